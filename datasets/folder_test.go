package datasets

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"slices"
	"testing"
)

// testImage is a w x h image whose colour encodes (tag, x, y), so a test can
// tell which file a sample came from.
func testImage(w, h int, tag uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{tag, uint8(10 * x), uint8(10 * y), 255})
		}
	}
	return img
}

func encode(t testing.TB, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if filepath.Ext(path) == ".png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, buf.Bytes())
}

func TestImageFolder(t *testing.T) {
	dir := t.TempDir()
	encode(t, filepath.Join(dir, "dog", "b.png"), testImage(5, 4, 1))
	encode(t, filepath.Join(dir, "dog", "a.jpg"), testImage(6, 3, 2))
	encode(t, filepath.Join(dir, "dog", "sub", "c.PNG"), testImage(2, 2, 3))
	encode(t, filepath.Join(dir, "cat", "z.png"), testImage(3, 3, 4))
	writeFile(t, filepath.Join(dir, "cat", "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(dir, "README"), []byte("ignored: not a folder"))

	ds, err := ImageFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Classes(), []string{"cat", "dog"}) || ds.Len() != 4 {
		t.Fatalf("classes %q, %d images", ds.Classes(), ds.Len())
	}
	// torchvision's order: classes sorted, files sorted by path.
	wantTags := []float32{4, 2, 1, 3}
	wantLabels := []int{0, 1, 1, 1}
	for i := range wantTags {
		s, err := ds.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Label != wantLabels[i] {
			t.Errorf("sample %d label %d, want %d", i, s.Label, wantLabels[i])
		}
		if s.Image.C != 3 {
			t.Errorf("sample %d has %d channels", i, s.Image.C)
		}
		// The red plane carries the tag (JPEG is lossy: allow 3/255).
		if d := s.Image.Pix[0]*255 - wantTags[i]; d > 3 || d < -3 {
			t.Errorf("sample %d red %v, want tag %v", i, s.Image.Pix[0]*255, wantTags[i])
		}
	}
	// The PNG is exact: pixel (x=3, y=2) of b.png has green 30, blue 20.
	s, _ := ds.Sample(2)
	img := s.Image
	if img.H != 4 || img.W != 5 || img.Pix[img.H*img.W+2*5+3] != 30.0/255 || img.Pix[2*img.H*img.W+2*5+3] != 20.0/255 {
		t.Errorf("b.png decoded wrongly: %dx%d", img.H, img.W)
	}
}

func TestDecodeGreyAndAlpha(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 2, 1))
	grey.Pix[1] = 200
	var buf bytes.Buffer
	png.Encode(&buf, grey)
	img, err := decodeImage(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if img.C != 3 || img.Pix[1] != 200.0/255 || img.Pix[3] != 200.0/255 || img.Pix[5] != 200.0/255 {
		t.Errorf("grey not replicated: %v", img.Pix)
	}
	// Alpha is dropped, not composited, as PIL's convert("RGB") does.
	rgba := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	rgba.SetNRGBA(0, 0, color.NRGBA{100, 150, 200, 10})
	buf.Reset()
	png.Encode(&buf, rgba)
	if img, err = decodeImage(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if img.Pix[0] != 100.0/255 || img.Pix[1] != 150.0/255 || img.Pix[2] != 200.0/255 {
		t.Errorf("alpha composited: %v", img.Pix)
	}
	// A paletted PNG takes the generic path.
	pal := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.RGBA{1, 2, 3, 255}})
	buf.Reset()
	png.Encode(&buf, pal)
	if img, err = decodeImage(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if img.Pix[0] != 1.0/255 || img.Pix[2] != 3.0/255 {
		t.Errorf("paletted: %v", img.Pix)
	}
}

func TestCorruptImage(t *testing.T) {
	dir := t.TempDir()
	encode(t, filepath.Join(dir, "a", "good.png"), testImage(4, 4, 0))
	var buf bytes.Buffer
	jpeg.Encode(&buf, testImage(16, 16, 0), nil)
	writeFile(t, filepath.Join(dir, "a", "truncated.jpg"), buf.Bytes()[:buf.Len()/2])
	ds, err := ImageFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ds.Sample(1)
	wantErr(t, err, filepath.Join(dir, "a", "truncated.jpg"))
}

func TestFolderSplits(t *testing.T) {
	// The ImageNet layout, which Stylized-ImageNet shares.
	dir := t.TempDir()
	for _, part := range []string{"train", "val"} {
		for _, c := range []string{"n01", "n02"} {
			encode(t, filepath.Join(dir, part, c, "x.png"), testImage(2, 2, 0))
		}
	}
	sp, err := FolderSplits(dir, 0.2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 2 || sp.Test.Len() != 2 {
		t.Errorf("train %d, test %d", sp.Train.Len(), sp.Test.Len())
	}
	encode(t, filepath.Join(dir, "val", "n03", "x.png"), testImage(2, 2, 0))
	_, err = FolderSplits(dir, 0.2, 0)
	wantErr(t, err, "different class folders")

	// One tree: a stratified split, 2 of each class's 10 images to test.
	dir = t.TempDir()
	for _, c := range []string{"a", "b"} {
		for k := 0; k < 10; k++ {
			encode(t, filepath.Join(dir, c, string(rune('0'+k))+".png"), testImage(2, 2, uint8(k)))
		}
	}
	sp, err = FolderSplits(dir, 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 16 || sp.Test.Len() != 4 {
		t.Fatalf("train %d, test %d", sp.Train.Len(), sp.Test.Len())
	}
	again, _ := FolderSplits(dir, 0.2, 7)
	if !slices.Equal(sp.Test.(*fileData).paths, again.Test.(*fileData).paths) {
		t.Error("the split changed between calls")
	}
	other, _ := FolderSplits(dir, 0.2, 8)
	if slices.Equal(sp.Test.(*fileData).paths, other.Test.(*fileData).paths) {
		t.Error("seeds 7 and 8 give the same split")
	}
	if _, err := FolderSplits(dir, 1, 7); err == nil {
		t.Error("test fraction 1: no error")
	}
}

func FuzzDecodeImage(f *testing.F) {
	for _, name := range []string{"a.png", "a.jpg"} {
		var buf bytes.Buffer
		if name == "a.png" {
			png.Encode(&buf, testImage(3, 2, 9))
		} else {
			jpeg.Encode(&buf, testImage(3, 2, 9), nil)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Refuse bombs: a tiny file may declare a huge image.
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		img, err := decodeImage(data)
		if err == nil && len(img.Pix) != 3*img.H*img.W {
			t.Errorf("%d values for %dx%d", len(img.Pix), img.H, img.W)
		}
	})
}
