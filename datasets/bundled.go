package datasets

import (
	"fmt"
	"math/rand/v2"

	"github.com/srmlab/srmlab/internal/parallel"
)

// BundledConfig sizes a data set generated in process. Zero fields take
// each generator's defaults.
type BundledConfig struct {
	// Seed selects the images; the same seed gives the same bits.
	Seed uint64
	// TrainPerClass and TestPerClass count the images of each class (of
	// each class in each domain, for Glyphs).
	TrainPerClass, TestPerClass int
	// Domains keeps only the named domains (Glyphs' styles), for
	// training on some styles and testing on another; empty keeps all.
	// Ids stay those of the full list.
	Domains []string
}

// bundledSide is the bundled images' size: CIFAR's, so CIFAR models and
// recipes apply unchanged.
const bundledSide = 32

// painter draws example i of a generated set into dst (CHW, bundledSide
// square) from its own generator, so examples can be drawn in parallel and
// in any order.
type painter func(i int, rng *rand.Rand, dst Image)

// generate draws the train and test splits of a bundled set: example i has
// class i%classes and domain (i/classes)%domains, which balances both, and
// the test examples continue the numbering of the train ones so that no
// image is in both.
func generate(cfg BundledConfig, defTrain, defTest int, stream uint64, classes, domains []string, paint painter) (*Splits, error) {
	if cfg.TrainPerClass < 0 || cfg.TestPerClass < 0 {
		return nil, fmt.Errorf("datasets: %d train and %d test images per class", cfg.TrainPerClass, cfg.TestPerClass)
	}
	if cfg.TrainPerClass == 0 {
		cfg.TrainPerClass = defTrain
	}
	if cfg.TestPerClass == 0 {
		cfg.TestPerClass = defTest
	}
	if len(cfg.Domains) > 0 {
		// Check the names before drawing thousands of images.
		probe := table{domains: domains}
		if _, err := probe.domainIndices(cfg.Domains); err != nil {
			return nil, err
		}
	}
	groups := len(classes) * max(len(domains), 1)
	part := func(first, n int) *memData {
		m := &memData{table: table{classes: classes, domains: domains, labels: make([]int, n)}, pix: make([]uint8, n*3*bundledSide*bundledSide), rows: identityRows(n), c: 3, h: bundledSide, w: bundledSide}
		if domains != nil {
			m.doms = make([]int, n)
		}
		size := 3 * bundledSide * bundledSide
		parallel.For(n, 50*size, func(lo, hi int) {
			img := NewImage(3, bundledSide, bundledSide)
			for k := lo; k < hi; k++ {
				i := first + k
				clear(img.Pix)
				paint(i, rand.New(randSource(stream, cfg.Seed, uint64(i))), img)
				for p, v := range img.Pix {
					m.pix[k*size+p] = quantise(v)
				}
				m.labels[k] = i % len(classes)
				if domains != nil {
					m.doms[k] = i / len(classes) % len(domains)
				}
			}
		})
		return m
	}
	ntrain := cfg.TrainPerClass * groups
	train, test := part(0, ntrain), part(ntrain, cfg.TestPerClass*groups)
	if len(cfg.Domains) > 0 {
		keepTrain, err := train.domainIndices(cfg.Domains)
		if err != nil {
			return nil, err
		}
		keepTest, _ := test.domainIndices(cfg.Domains)
		train, test = train.subset(keepTrain), test.subset(keepTest)
	}
	return &Splits{Train: train, Test: test}, nil
}

// quantise rounds a [0, 1] intensity to 8 bits, clamping what a generator
// let overshoot.
func quantise(v float32) uint8 {
	return uint8(min(max(v*255+0.5, 0), 255))
}
