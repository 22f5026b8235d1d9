package datasets

import (
	"math"
	"slices"
	"testing"
)

func TestBundledBalanceAndDeterminism(t *testing.T) {
	for _, tc := range []struct {
		name       string
		gen        func(BundledConfig) (*Splits, error)
		train, dom int
	}{{"textures", Textures, 300, 0}, {"domains", Glyphs, 80, 4}} {
		sp, err := tc.gen(BundledConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if sp.Train.Len()+sp.Test.Len() != 4000 {
			t.Errorf("%s: %d + %d images", tc.name, sp.Train.Len(), sp.Test.Len())
		}
		if len(sp.Train.Domains()) != tc.dom {
			t.Errorf("%s: domains %q", tc.name, sp.Train.Domains())
		}
		groups := map[[2]int]int{}
		for i := 0; i < sp.Train.Len(); i++ {
			s, _ := sp.Train.Sample(i)
			groups[[2]int{s.Domain, s.Label}]++
		}
		for g, n := range groups {
			if n != tc.train {
				t.Errorf("%s: (domain, class) %v has %d train images, want %d", tc.name, g, n, tc.train)
			}
		}
		if len(groups) != 10*max(tc.dom, 1) {
			t.Errorf("%s: %d groups", tc.name, len(groups))
		}
		small := BundledConfig{TrainPerClass: 2, TestPerClass: 2}
		sp, _ = tc.gen(small)
		again, _ := tc.gen(small)
		small.Seed = 1
		other, _ := tc.gen(small)
		a, _ := sp.Test.Sample(17)
		b, _ := again.Test.Sample(17)
		c, _ := other.Test.Sample(17)
		if !slices.Equal(a.Image.Pix, b.Image.Pix) {
			t.Errorf("%s: the same seed gave different images", tc.name)
		}
		if slices.Equal(a.Image.Pix, c.Image.Pix) {
			t.Errorf("%s: seeds 0 and 1 gave the same image", tc.name)
		}
		if tr, _ := sp.Train.Sample(17); slices.Equal(a.Image.Pix, tr.Image.Pix) {
			t.Errorf("%s: train and test share an image", tc.name)
		}
	}
}

// TestTexturesEqualMean checks the property the textures set exists for:
// the class cannot be told from an image's mean colour, only from how its
// pixels spread around it.
func TestTexturesEqualMean(t *testing.T) {
	sp, err := Textures(BundledConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const classes, plane = 10, 1024
	var meanSum, meanSq, stdSum [classes][3]float64
	var count [classes]float64
	for i := 0; i < sp.Train.Len(); i++ {
		s, _ := sp.Train.Sample(i)
		for c := 0; c < 3; c++ {
			var sum, sq float64
			for _, v := range s.Image.Pix[c*plane : (c+1)*plane] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			m := sum / plane
			meanSum[s.Label][c] += m
			meanSq[s.Label][c] += m * m
			stdSum[s.Label][c] += math.Sqrt(sq/plane - m*m)
		}
		count[s.Label]++
	}
	minStd, maxStd := math.Inf(1), 0.0
	for c := 0; c < 3; c++ {
		var grand, spread float64
		for k := range classes {
			grand += meanSum[k][c] / count[k] / classes
			spread += (meanSq[k][c]/count[k] - math.Pow(meanSum[k][c]/count[k], 2)) / classes
		}
		// Each class's average mean colour is the grand one within four
		// standard errors (the per-image means are uniform on [0.3, 0.7],
		// sd 0.115, so 4 SE is about 0.027 for 300 images).
		se := math.Sqrt(spread / count[0])
		for k := range classes {
			if d := math.Abs(meanSum[k][c]/count[k] - grand); d > 4*se {
				t.Errorf("class %s channel %d: average mean colour off by %.4f (4 SE = %.4f)", textureClasses[k], c, d, 4*se)
			}
			sd := stdSum[k][c] / count[k]
			minStd, maxStd = min(minStd, sd), max(maxStd, sd)
		}
	}
	// The spread, in contrast, differs by class: smooth is faint.
	if minStd > 0.04 || maxStd < 0.1 {
		t.Errorf("class-average per-image std spans %.3f..%.3f, want below 0.04 to above 0.1", minStd, maxStd)
	}

	// A nearest-centroid classifier on the mean colour is at chance; on
	// the per-channel std it is not.
	meanAcc := centroidAccuracy(t, sp, func(m, s [3]float64) []float64 { return m[:] })
	stdAcc := centroidAccuracy(t, sp, func(m, s [3]float64) []float64 { return s[:] })
	t.Logf("nearest-centroid test accuracy: mean colour %.3f, std %.3f", meanAcc, stdAcc)
	if meanAcc > 0.15 || stdAcc < 0.2 {
		t.Errorf("nearest-centroid accuracy from mean colour %.3f (want chance, 0.1), from std %.3f", meanAcc, stdAcc)
	}
}

// centroidAccuracy fits class centroids of a per-image feature on the train
// split and reports test accuracy.
func centroidAccuracy(t *testing.T, sp *Splits, feature func(mean, std [3]float64) []float64) float64 {
	stats := func(img Image) (m, s [3]float64) {
		n := float64(img.H * img.W)
		for c := range 3 {
			var sum, sq float64
			for _, v := range img.Pix[c*img.H*img.W : (c+1)*img.H*img.W] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			m[c] = sum / n
			s[c] = math.Sqrt(sq/n - m[c]*m[c])
		}
		return m, s
	}
	k := len(sp.Train.Classes())
	centroids := make([][]float64, k)
	counts := make([]float64, k)
	for i := 0; i < sp.Train.Len(); i++ {
		smp, _ := sp.Train.Sample(i)
		f := feature(stats(smp.Image))
		if centroids[smp.Label] == nil {
			centroids[smp.Label] = make([]float64, len(f))
		}
		for d, v := range f {
			centroids[smp.Label][d] += v
		}
		counts[smp.Label]++
	}
	for c := range centroids {
		for d := range centroids[c] {
			centroids[c][d] /= counts[c]
		}
	}
	correct := 0
	for i := 0; i < sp.Test.Len(); i++ {
		smp, _ := sp.Test.Sample(i)
		f := feature(stats(smp.Image))
		best, bestDist := -1, math.Inf(1)
		for c, cen := range centroids {
			var dist float64
			for d := range f {
				dist += (f[d] - cen[d]) * (f[d] - cen[d])
			}
			if dist < bestDist {
				best, bestDist = c, dist
			}
		}
		if best == smp.Label {
			correct++
		}
	}
	return float64(correct) / float64(sp.Test.Len())
}

func TestGlyphDomainFilter(t *testing.T) {
	sp, err := Glyphs(BundledConfig{TrainPerClass: 2, TestPerClass: 1, Domains: []string{"sketch", "pixel"}})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 40 || sp.Test.Len() != 20 || len(sp.Train.Domains()) != 4 {
		t.Fatalf("train %d test %d domains %q", sp.Train.Len(), sp.Test.Len(), sp.Train.Domains())
	}
	for i := 0; i < sp.Test.Len(); i++ {
		if s, _ := sp.Test.Sample(i); s.Domain != 1 && s.Domain != 3 {
			t.Fatalf("test sample %d has domain %d", i, s.Domain)
		}
	}
	_, err = Glyphs(BundledConfig{Domains: []string{"oil"}})
	wantErr(t, err, `unknown domain "oil"`)
	_, err = Textures(BundledConfig{Domains: []string{"flat"}})
	wantErr(t, err, "without domains")
}

func BenchmarkTextures(b *testing.B) {
	for b.Loop() {
		if _, err := Textures(BundledConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGlyphs(b *testing.B) {
	for b.Loop() {
		if _, err := Glyphs(BundledConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}
