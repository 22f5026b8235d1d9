package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Transform maps one image to another, drawing any randomness from rng. A
// Loader hands each sample its own rng seeded by (seed, epoch, index), which
// is what makes augmentation reproducible under parallel decoding.
type Transform interface {
	Apply(img Image, rng *rand.Rand) (Image, error)
}

// Compose applies transforms in order, as torchvision's Compose does.
func Compose(ts ...Transform) Transform { return pipeline(ts) }

type pipeline []Transform

func (p pipeline) Apply(img Image, rng *rand.Rand) (Image, error) {
	for _, t := range p {
		var err error
		if img, err = t.Apply(img, rng); err != nil {
			return Image{}, err
		}
	}
	return img, nil
}

// RandomCrop pads every side by Pad zeros and cuts a random Size x Size
// window: the 4-pixel pad + 32 crop of the CIFAR recipe.
type RandomCrop struct {
	Size, Pad int
}

// Apply implements Transform.
func (t RandomCrop) Apply(img Image, rng *rand.Rand) (Image, error) {
	if t.Size <= 0 || t.Pad < 0 {
		return Image{}, fmt.Errorf("datasets: RandomCrop size %d pad %d", t.Size, t.Pad)
	}
	spanH, spanW := img.H+2*t.Pad-t.Size, img.W+2*t.Pad-t.Size
	if spanH < 0 || spanW < 0 {
		return Image{}, fmt.Errorf("datasets: RandomCrop %d with pad %d of a %dx%d image", t.Size, t.Pad, img.H, img.W)
	}
	top := rng.IntN(spanH+1) - t.Pad
	left := rng.IntN(spanW+1) - t.Pad
	return crop(img, top, left, t.Size, t.Size), nil
}

// HFlip mirrors the image left to right with probability P.
type HFlip struct {
	P float64
}

// Apply implements Transform.
func (t HFlip) Apply(img Image, rng *rand.Rand) (Image, error) {
	if rng.Float64() >= t.P {
		return img, nil
	}
	out := NewImage(img.C, img.H, img.W)
	for row := 0; row < img.C*img.H; row++ {
		src, dst := img.Pix[row*img.W:(row+1)*img.W], out.Pix[row*img.W:(row+1)*img.W]
		for x := range src {
			dst[img.W-1-x] = src[x]
		}
	}
	return out, nil
}

// RandomResizedCrop is torchvision's crop of the ImageNet recipe: a window
// of random area and aspect ratio, resized to Size x Size with the bilinear
// filter. The zero value's ranges become torchvision's defaults, scale
// (0.08, 1) and ratio (3/4, 4/3).
type RandomResizedCrop struct {
	Size               int
	ScaleMin, ScaleMax float64
	RatioMin, RatioMax float64
}

// Apply implements Transform.
func (t RandomResizedCrop) Apply(img Image, rng *rand.Rand) (Image, error) {
	if t.Size <= 0 || img.H <= 0 || img.W <= 0 {
		return Image{}, fmt.Errorf("datasets: RandomResizedCrop %d of a %dx%d image", t.Size, img.H, img.W)
	}
	top, left, h, w := t.window(img.H, img.W, rng)
	return resize(img, top, left, h, w, t.Size, t.Size), nil
}

// window follows torchvision's RandomResizedCrop.get_params, including its
// ten attempts, its round-half-to-even and its centre-crop fallback.
func (t RandomResizedCrop) window(height, width int, rng *rand.Rand) (top, left, h, w int) {
	smin, smax, rmin, rmax := t.ScaleMin, t.ScaleMax, t.RatioMin, t.RatioMax
	if smin == 0 && smax == 0 {
		smin, smax = 0.08, 1
	}
	if rmin == 0 && rmax == 0 {
		rmin, rmax = 3.0/4, 4.0/3
	}
	area := float64(height * width)
	lrmin, lrmax := math.Log(rmin), math.Log(rmax)
	for range 10 {
		target := area * (smin + (smax-smin)*rng.Float64())
		aspect := math.Exp(lrmin + (lrmax-lrmin)*rng.Float64())
		w := int(math.RoundToEven(math.Sqrt(target * aspect)))
		h := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if w > 0 && w <= width && h > 0 && h <= height {
			return rng.IntN(height - h + 1), rng.IntN(width - w + 1), h, w
		}
	}
	in := float64(width) / float64(height)
	switch {
	case in < rmin:
		w, h = width, int(math.RoundToEven(float64(width)/rmin))
	case in > rmax:
		h, w = height, int(math.RoundToEven(float64(height)*rmax))
	default:
		h, w = height, width
	}
	return (height - h) / 2, (width - w) / 2, h, w
}

// Resize scales the image so that its shorter side is Short, keeping the
// aspect ratio, with the bilinear filter (torchvision's Resize(int)).
type Resize struct {
	Short int
}

// Apply implements Transform.
func (t Resize) Apply(img Image, _ *rand.Rand) (Image, error) {
	if t.Short <= 0 || img.H <= 0 || img.W <= 0 {
		return Image{}, fmt.Errorf("datasets: Resize %d of a %dx%d image", t.Short, img.H, img.W)
	}
	h, w := t.Short, t.Short
	// torchvision truncates the longer side.
	if img.H > img.W {
		h = t.Short * img.H / img.W
	} else {
		w = t.Short * img.W / img.H
	}
	if h == img.H && w == img.W {
		return img, nil
	}
	return resize(img, 0, 0, img.H, img.W, h, w), nil
}

// CenterCrop cuts the central Size x Size window, padding with zeros when
// the image is smaller, as torchvision's CenterCrop does.
type CenterCrop struct {
	Size int
}

// Apply implements Transform.
func (t CenterCrop) Apply(img Image, _ *rand.Rand) (Image, error) {
	if t.Size <= 0 {
		return Image{}, fmt.Errorf("datasets: CenterCrop size %d", t.Size)
	}
	top := int(math.RoundToEven(float64(img.H-t.Size) / 2))
	left := int(math.RoundToEven(float64(img.W-t.Size) / 2))
	return crop(img, top, left, t.Size, t.Size), nil
}

// Normalize maps each channel to (x - Mean[c]) / Std[c]; it comes last in
// both recipes, after the crops that pad with zeros.
type Normalize struct {
	Mean, Std []float32
}

// Apply implements Transform.
func (t Normalize) Apply(img Image, _ *rand.Rand) (Image, error) {
	if len(t.Mean) != img.C || len(t.Std) != img.C {
		return Image{}, fmt.Errorf("datasets: Normalize with %d means and %d stds of a %d-channel image", len(t.Mean), len(t.Std), img.C)
	}
	out := NewImage(img.C, img.H, img.W)
	plane := img.H * img.W
	for c := 0; c < img.C; c++ {
		m, s := t.Mean[c], t.Std[c]
		if s == 0 {
			return Image{}, fmt.Errorf("datasets: Normalize std of channel %d is zero", c)
		}
		for k := c * plane; k < (c+1)*plane; k++ {
			out.Pix[k] = (img.Pix[k] - m) / s
		}
	}
	return out, nil
}

// ImageNetNorm is the mean and std of the ImageNet recipe.
func ImageNetNorm() Normalize {
	return Normalize{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
}

// ChannelStats measures the per-channel mean and standard deviation of a
// data set's pixels, for normalising data sets without published values
// (the bundled ones, a CIFAR copy). It decodes every example once.
func ChannelStats(ds Dataset) (Normalize, error) {
	var sum, sq []float64
	var count float64
	for i := 0; i < ds.Len(); i++ {
		s, err := ds.Sample(i)
		if err != nil {
			return Normalize{}, err
		}
		img := s.Image
		if sum == nil {
			sum, sq = make([]float64, img.C), make([]float64, img.C)
		}
		if img.C != len(sum) {
			return Normalize{}, fmt.Errorf("datasets: sample %d has %d channels, sample 0 has %d", i, img.C, len(sum))
		}
		plane := img.H * img.W
		for c := 0; c < img.C; c++ {
			for _, v := range img.Pix[c*plane : (c+1)*plane] {
				sum[c] += float64(v)
				sq[c] += float64(v) * float64(v)
			}
		}
		count += float64(plane)
	}
	if count == 0 {
		return Normalize{}, fmt.Errorf("datasets: channel statistics of an empty data set")
	}
	n := Normalize{Mean: make([]float32, len(sum)), Std: make([]float32, len(sum))}
	for c := range sum {
		m := sum[c] / count
		n.Mean[c] = float32(m)
		n.Std[c] = float32(math.Sqrt(math.Max(sq[c]/count-m*m, 0)))
	}
	return n, nil
}

// CIFARTrain is the augmentation of He et al.'s CIFAR recipe: 4-pixel pad,
// random 32x32 crop, horizontal flip, then norm.
func CIFARTrain(norm Normalize) Transform {
	return Compose(RandomCrop{Size: 32, Pad: 4}, HFlip{P: 0.5}, norm)
}

// CIFARTest only normalises: CIFAR evaluation uses the whole image.
func CIFARTest(norm Normalize) Transform { return norm }

// ImageNetTrain is the official SRM code's training augmentation:
// RandomResizedCrop(size), horizontal flip, ImageNet normalisation.
func ImageNetTrain(size int) Transform {
	return Compose(RandomResizedCrop{Size: size}, HFlip{P: 0.5}, ImageNetNorm())
}

// ImageNetTest is the single-crop evaluation: shorter side to resize, the
// central crop x crop window, ImageNet normalisation (256 and 224 in the
// paper).
func ImageNetTest(resize, crop int) Transform {
	return Compose(Resize{Short: resize}, CenterCrop{Size: crop}, ImageNetNorm())
}

// crop copies the h x w window at (top, left), which may reach outside the
// image: the outside reads as zero, which is how padding crops pad.
func crop(img Image, top, left, h, w int) Image {
	out := NewImage(img.C, h, w)
	x0, x1 := max(left, 0), min(left+w, img.W)
	if x0 >= x1 {
		return out
	}
	for c := 0; c < img.C; c++ {
		for y := max(top, 0); y < min(top+h, img.H); y++ {
			src := img.Pix[(c*img.H+y)*img.W:]
			dst := out.Pix[(c*h+y-top)*w:]
			copy(dst[x0-left:x1-left], src[x0:x1])
		}
	}
	return out
}
