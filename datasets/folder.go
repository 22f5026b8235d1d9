package datasets

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // ImageFolder, DTD and Office-Home ship JPEGs
	_ "image/png"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "golang.org/x/image/bmp" // the rest of torchvision's IMG_EXTENSIONS that Go decodes
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// imageExts are the extensions an ImageFolder keeps, torchvision's
// IMG_EXTENSIONS less the formats Go cannot decode (ppm, pgm).
var imageExts = []string{".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}

// fileData decodes image files on demand: ImageNet-sized trees do not fit
// in memory.
type fileData struct {
	table
	paths []string
}

func (f *fileData) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(f.paths) {
		return Sample{}, fmt.Errorf("datasets: sample %d out of range [0, %d)", i, len(f.paths))
	}
	img, err := decodeFile(f.paths[i])
	if err != nil {
		return Sample{}, err
	}
	return Sample{Image: img, Label: f.labels[i], Domain: f.domain(i)}, nil
}

func (f *fileData) subset(keep []int) *fileData {
	paths := make([]string, len(keep))
	for k, i := range keep {
		paths[k] = f.paths[i]
	}
	return &fileData{table: f.pick(keep), paths: paths}
}

func decodeFile(path string) (Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("datasets: %w", err)
	}
	img, err := decodeImage(data)
	if err != nil {
		return Image{}, fmt.Errorf("datasets: %s: %w", path, err)
	}
	return img, nil
}

// maxPixels refuses decompression bombs, files whose few bytes declare a
// huge image; it is the size at which PIL refuses too.
const maxPixels = 2 * 89478485

// decodeImage turns an encoded image into RGB in [0, 1]. Like PIL's
// convert("RGB") it replicates grey and drops alpha without compositing.
func decodeImage(data []byte) (Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Image{}, err
	}
	if cfg.Width*cfg.Height > maxPixels {
		return Image{}, fmt.Errorf("%dx%d image: more than %d pixels", cfg.Width, cfg.Height, maxPixels)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return Image{}, err
	}
	b := src.Bounds()
	out := NewImage(3, b.Dy(), b.Dx())
	plane := b.Dx() * b.Dy()
	set := func(k int, r, g, bl uint8) {
		out.Pix[k] = float32(r) / 255
		out.Pix[plane+k] = float32(g) / 255
		out.Pix[2*plane+k] = float32(bl) / 255
	}
	// Fast paths for what the JPEG and PNG decoders return; the generic
	// path through At is several times slower.
	switch im := src.(type) {
	case *image.YCbCr:
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				yi, ci := im.YOffset(b.Min.X+x, b.Min.Y+y), im.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(im.Y[yi], im.Cb[ci], im.Cr[ci])
				set(y*b.Dx()+x, r, g, bl)
			}
		}
	case *image.Gray:
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				v := im.Pix[im.PixOffset(b.Min.X+x, b.Min.Y+y)]
				set(y*b.Dx()+x, v, v, v)
			}
		}
	case *image.NRGBA:
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				p := im.Pix[im.PixOffset(b.Min.X+x, b.Min.Y+y):]
				set(y*b.Dx()+x, p[0], p[1], p[2])
			}
		}
	default:
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				c := color.NRGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				set(y*b.Dx()+x, c.R, c.G, c.B)
			}
		}
	}
	return out, nil
}

// ImageFolder reads a tree of class folders as torchvision's ImageFolder
// does: classes are the sorted names of dir's subfolders, and each class
// holds the image files found below its folder, in sorted path order.
func ImageFolder(dir string) (Dataset, error) {
	return imageFolder(dir)
}

func imageFolder(dir string) (*fileData, error) {
	classes, err := subdirs(dir)
	if err != nil {
		return nil, err
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("datasets: %s has no class folders", dir)
	}
	f := &fileData{table: table{classes: classes}}
	for c, name := range classes {
		files, err := imageFiles(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		for _, p := range files {
			f.paths = append(f.paths, p)
			f.labels = append(f.labels, c)
		}
	}
	if len(f.paths) == 0 {
		return nil, fmt.Errorf("datasets: %s has no images (%s)", dir, strings.Join(imageExts, " "))
	}
	return f, nil
}

// subdirs lists the sorted names of dir's subfolders.
func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// imageFiles lists the image files below dir in sorted order (WalkDir
// visits entries in lexical order, as torchvision's sorted os.walk).
func imageFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.Contains(imageExts, strings.ToLower(filepath.Ext(p))) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	return files, nil
}

// FolderSplits reads a data set laid out as ImageNet is, and as Stylized-
// ImageNet is: dir/train and dir/val (or dir/test) ImageFolders. A dir
// without a train folder is one ImageFolder, split per class into test and
// train parts by a seeded shuffle, testFrac of each class going to test.
func FolderSplits(dir string, testFrac float64, seed uint64) (*Splits, error) {
	train := filepath.Join(dir, "train")
	if st, err := os.Stat(train); err == nil && st.IsDir() {
		tr, err := imageFolder(train)
		if err != nil {
			return nil, err
		}
		sp := &Splits{Train: tr}
		for _, name := range []string{"val", "test"} {
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.IsDir() {
				if sp.Test, err = imageFolder(filepath.Join(dir, name)); err != nil {
					return nil, err
				}
				if !slices.Equal(tr.classes, sp.Test.Classes()) {
					return nil, fmt.Errorf("datasets: %s and %s have different class folders", train, filepath.Join(dir, name))
				}
				return sp, nil
			}
		}
		return nil, fmt.Errorf("datasets: %s has train/ but neither val/ nor test/", dir)
	}
	all, err := imageFolder(dir)
	if err != nil {
		return nil, err
	}
	trainIdx, testIdx, err := stratify(&all.table, testFrac, seed)
	if err != nil {
		return nil, err
	}
	return &Splits{Train: all.subset(trainIdx), Test: all.subset(testIdx)}, nil
}

// stratify splits each (domain, class) group by a seeded shuffle, giving
// round(testFrac*n) of its n examples to test; the split depends only on the
// seed and the sorted file list, so it is the same on every machine.
func stratify(t *table, testFrac float64, seed uint64) (train, test []int, err error) {
	if !(testFrac > 0 && testFrac < 1) {
		return nil, nil, fmt.Errorf("datasets: test fraction %v, want 0 < f < 1", testFrac)
	}
	groups := map[[2]int][]int{}
	var keys [][2]int
	for i := range t.labels {
		k := [2]int{t.domain(i), t.labels[i]}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	isTest := make([]bool, len(t.labels))
	for _, k := range keys {
		g := groups[k]
		perm := permutation(len(g), randSource(streamSplit, seed, uint64(k[0]), uint64(k[1])))
		nt := int(float64(len(g))*testFrac + 0.5)
		for _, p := range perm[:nt] {
			isTest[g[p]] = true
		}
	}
	for i, te := range isTest {
		if te {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test, nil
}
