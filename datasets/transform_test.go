package datasets

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ramp is a c x h x w image whose values are all distinct, so a crop or
// flip can be located exactly.
func ramp(c, h, w int) Image {
	img := NewImage(c, h, w)
	for k := range img.Pix {
		img.Pix[k] = float32(k+1) / float32(len(img.Pix))
	}
	return img
}

func testRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

func equalImages(a, b Image) bool {
	if a.C != b.C || a.H != b.H || a.W != b.W || len(a.Pix) != len(b.Pix) {
		return false
	}
	for k := range a.Pix {
		if a.Pix[k] != b.Pix[k] {
			return false
		}
	}
	return true
}

func TestRandomCrop(t *testing.T) {
	img := ramp(3, 32, 32)
	seen := map[[2]int]bool{}
	for seed := range uint64(2000) {
		out, err := RandomCrop{Size: 32, Pad: 4}.Apply(img, testRNG(seed))
		if err != nil {
			t.Fatal(err)
		}
		if out.C != 3 || out.H != 32 || out.W != 32 {
			t.Fatalf("crop is %dx%dx%d", out.C, out.H, out.W)
		}
		// The crop must be a window of the zero-padded image at an offset
		// within the padding.
		found := false
		for dy := -4; dy <= 4 && !found; dy++ {
			for dx := -4; dx <= 4 && !found; dx++ {
				if equalImages(out, crop(img, dy, dx, 32, 32)) {
					seen[[2]int{dy, dx}] = true
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("seed %d: the crop is no window of the padded image", seed)
		}
	}
	if len(seen) != 81 {
		t.Errorf("%d of the 81 offsets seen", len(seen))
	}
	// Padding reads as zero: the window at (-4, -4) starts with 4 zero rows.
	c := crop(img, -4, -4, 32, 32)
	if c.Pix[3*32+3] != 0 || c.Pix[4*32+4] != img.Pix[0] {
		t.Error("padding is not zero or the window is misplaced")
	}
	if _, err := (RandomCrop{Size: 41, Pad: 4}).Apply(img, testRNG(0)); err == nil {
		t.Error("a crop larger than the padded image: no error")
	}
}

func TestHFlip(t *testing.T) {
	img := ramp(2, 3, 4)
	out, _ := HFlip{P: 1}.Apply(img, testRNG(0))
	for c := 0; c < 2; c++ {
		for y := 0; y < 3; y++ {
			for x := 0; x < 4; x++ {
				if out.Pix[(c*3+y)*4+x] != img.Pix[(c*3+y)*4+3-x] {
					t.Fatalf("(%d,%d,%d) is not the mirror", c, y, x)
				}
			}
		}
	}
	if twice, _ := (HFlip{P: 1}).Apply(out, testRNG(0)); !equalImages(twice, img) {
		t.Error("flipping twice is not the identity")
	}
	if same, _ := (HFlip{P: 0}).Apply(img, testRNG(0)); !equalImages(same, img) {
		t.Error("P=0 flipped")
	}
	flips := 0
	for seed := range uint64(1000) {
		o, _ := HFlip{P: 0.5}.Apply(img, testRNG(seed))
		if !equalImages(o, img) {
			flips++
		}
	}
	if flips < 430 || flips > 570 {
		t.Errorf("%d flips in 1000 at P=0.5", flips)
	}
}

func TestNormalize(t *testing.T) {
	img := NewImage(2, 1, 2)
	copy(img.Pix, []float32{0.5, 1, 0, 0.25})
	out, err := Normalize{Mean: []float32{0.5, 0.25}, Std: []float32{0.25, 0.5}}.Apply(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 2, -0.5, 0}
	for k := range want {
		if out.Pix[k] != want[k] {
			t.Errorf("value %d: %v, want %v", k, out.Pix[k], want[k])
		}
	}
	if _, err := ImageNetNorm().Apply(img, nil); err == nil {
		t.Error("3 means for 2 channels: no error")
	}
	if _, err := (Normalize{Mean: []float32{0, 0}, Std: []float32{1, 0}}).Apply(img, nil); err == nil {
		t.Error("zero std: no error")
	}
}

func TestResizeFilter(t *testing.T) {
	near := func(got []float32, want ...float64) bool {
		for k := range want {
			if math.Abs(float64(got[k])-want[k]) > 1e-6 {
				return false
			}
		}
		return true
	}
	row := NewImage(1, 1, 2)
	copy(row.Pix, []float32{0, 1})
	// Enlarging is bilinear interpolation with align_corners=False.
	if up := resize(row, 0, 0, 1, 2, 1, 4); !near(up.Pix, 0, 0.25, 0.75, 1) {
		t.Errorf("2 -> 4: %v", up.Pix)
	}
	// Halving uses PIL's widened triangle: taps 3/7, 3/7, 1/7 at the edge.
	four := NewImage(1, 1, 4)
	copy(four.Pix, []float32{1, 0, 0, 0})
	if down := resize(four, 0, 0, 1, 4, 1, 2); !near(down.Pix, 3.0/7, 0) {
		t.Errorf("4 -> 2: %v", down.Pix)
	}
	// A constant image stays constant at any size and window.
	flat := NewImage(3, 17, 23)
	for k := range flat.Pix {
		flat.Pix[k] = 0.3
	}
	for _, s := range [][2]int{{5, 7}, {40, 9}, {17, 23}} {
		out := resize(flat, 2, 3, 11, 13, s[0], s[1])
		for _, v := range out.Pix {
			if math.Abs(float64(v)-0.3) > 1e-6 {
				t.Fatalf("%v: constant image gave %v", s, v)
			}
		}
	}
}

func TestResizeAndCenterCrop(t *testing.T) {
	out, err := Resize{Short: 25}.Apply(ramp(3, 100, 50), nil)
	if err != nil || out.H != 50 || out.W != 25 {
		t.Fatalf("Resize(25) of 100x50: %dx%d, %v", out.H, out.W, err)
	}
	// torchvision truncates the long side: 256 * 333 / 500 = 170.5 -> 170.
	out, _ = Resize{Short: 256}.Apply(ramp(1, 333, 500), nil)
	if out.H != 256 || out.W != 384 {
		t.Errorf("Resize(256) of 333x500: %dx%d, want 256x384", out.H, out.W)
	}
	img := ramp(1, 5, 6)
	// (5-2)/2 = 1.5 rounds to even, 2; (6-2)/2 = 2.
	out, _ = CenterCrop{Size: 2}.Apply(img, nil)
	if !equalImages(out, crop(img, 2, 2, 2, 2)) {
		t.Errorf("centre crop at the wrong place: %v", out.Pix)
	}
	// A crop larger than the image pads with zeros.
	out, _ = CenterCrop{Size: 8}.Apply(img, nil)
	if out.H != 8 || out.Pix[0] != 0 || out.Pix[2*8+1] != img.Pix[0] {
		t.Errorf("padding centre crop wrong: %v", out.Pix[:24])
	}
}

func TestRandomResizedCrop(t *testing.T) {
	rrc := RandomResizedCrop{Size: 24}
	img := ramp(3, 60, 80)
	for seed := range uint64(300) {
		top, left, h, w := rrc.window(60, 80, testRNG(seed))
		if top < 0 || left < 0 || h <= 0 || w <= 0 || top+h > 60 || left+w > 80 {
			t.Fatalf("seed %d: window (%d,%d) %dx%d outside 60x80", seed, top, left, h, w)
		}
		area, ratio := float64(h*w)/(60*80), float64(w)/float64(h)
		if area < 0.07 || area > 1.01 || ratio < 0.7 || ratio > 1.4 {
			t.Errorf("seed %d: area %.3f ratio %.3f outside (0.08, 1), (3/4, 4/3)", seed, area, ratio)
		}
		a, err := rrc.Apply(img, testRNG(seed))
		if err != nil || a.C != 3 || a.H != 24 || a.W != 24 {
			t.Fatalf("seed %d: %dx%dx%d, %v", seed, a.C, a.H, a.W, err)
		}
		if b, _ := rrc.Apply(img, testRNG(seed)); !equalImages(a, b) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
	}
	// Ten impossible attempts fall back to the central crop, clamped to
	// the ratio range: 10 x 100 is wider than 4/3, so 10 x 13 in the middle.
	wide := RandomResizedCrop{Size: 4, ScaleMin: 2, ScaleMax: 3}
	if top, left, h, w := wide.window(10, 100, testRNG(0)); top != 0 || h != 10 || w != 13 || left != 43 {
		t.Errorf("fallback window (%d,%d) %dx%d, want (0,43) 10x13", top, left, h, w)
	}
	if top, left, h, w := wide.window(20, 20, testRNG(0)); top != 0 || left != 0 || h != 20 || w != 20 {
		t.Errorf("fallback for a square (%d,%d) %dx%d, want the whole image", top, left, h, w)
	}
}

func TestPresets(t *testing.T) {
	norm := Normalize{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}}
	out, err := CIFARTrain(norm).Apply(ramp(3, 32, 32), testRNG(1))
	if err != nil || out.H != 32 || out.W != 32 {
		t.Fatalf("CIFARTrain: %dx%d, %v", out.H, out.W, err)
	}
	out, err = ImageNetTrain(224).Apply(ramp(3, 300, 400), testRNG(1))
	if err != nil || out.H != 224 || out.W != 224 {
		t.Fatalf("ImageNetTrain: %dx%d, %v", out.H, out.W, err)
	}
	out, err = ImageNetTest(256, 224).Apply(ramp(3, 300, 400), nil)
	if err != nil || out.H != 224 || out.W != 224 {
		t.Fatalf("ImageNetTest: %dx%d, %v", out.H, out.W, err)
	}
	// The test pipeline normalises: an all-mean image becomes zero.
	grey := NewImage(3, 32, 32)
	for k := range grey.Pix {
		grey.Pix[k] = 0.5
	}
	if out, _ = CIFARTest(norm).Apply(grey, nil); out.Pix[0] != 0 {
		t.Errorf("CIFARTest of the mean: %v", out.Pix[0])
	}
}

func TestChannelStats(t *testing.T) {
	sp, err := Textures(BundledConfig{TrainPerClass: 3, TestPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	n, err := ChannelStats(sp.Train)
	if err != nil {
		t.Fatal(err)
	}
	// Recompute channel 2 in float64 directly.
	var sum, sq, cnt float64
	for i := 0; i < sp.Train.Len(); i++ {
		s, _ := sp.Train.Sample(i)
		for _, v := range s.Image.Pix[2*1024:] {
			sum += float64(v)
			sq += float64(v) * float64(v)
			cnt++
		}
	}
	m := sum / cnt
	if math.Abs(float64(n.Mean[2])-m) > 1e-6 || math.Abs(float64(n.Std[2])-math.Sqrt(sq/cnt-m*m)) > 1e-6 {
		t.Errorf("channel 2: %v %v, want %v %v", n.Mean[2], n.Std[2], m, math.Sqrt(sq/cnt-m*m))
	}
}
