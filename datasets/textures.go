package datasets

import (
	"math"
	"math/rand/v2"
)

// textureClasses names the classes of Textures in label order.
var textureClasses = []string{
	"smooth", "blotchy", "grainy", "chromatic", "striped-horizontal",
	"striped-vertical", "striped-diagonal", "fine-lined", "chequered", "dotted",
}

// Textures generates "textures", a stand-in for DTD in which colour carries
// no information: every image's mean colour is drawn from the same
// distribution (each channel uniform in [0.3, 0.7]) whatever its class, and
// the class shows only in how the pixels vary around that mean, the
// second-order statistics that SRM's style (std) pooling sees and a
// mean-only squeeze does not:
//
//	smooth              low-frequency blobs, low contrast (std 0.01-0.04)
//	blotchy             low-frequency blobs, high contrast (0.08-0.18)
//	grainy              white noise, the same in every channel (grey grain)
//	chromatic           white noise, independent per channel (colour grain)
//	striped-horizontal  coarse sine bands, period 5-8 px
//	striped-vertical    the same, turned 90 degrees
//	striped-diagonal    the same at 45 or 135 degrees
//	fine-lined          sine lines of period 2.2-3 px at any orientation
//	chequered           a square checkerboard, period 6-10 px
//	dotted              a few small dots on a plain ground
//
// Unless stated, contrast (the per-image std) is uniform in 0.06-0.18. A
// pattern is made zero-mean before it is added to the mean colour and
// shrunk if it would clip, so each image's mean colour is its drawn one
// within 8-bit rounding. Defaults: 300 train and 100 test images per class,
// 4,000 in all, 32x32 RGB.
func Textures(cfg BundledConfig) (*Splits, error) {
	return generate(cfg, 300, 100, streamTextures, textureClasses, nil, paintTexture)
}

func paintTexture(i int, rng *rand.Rand, dst Image) {
	class := i % len(textureClasses)
	const n = bundledSide * bundledSide
	var mean [3]float32
	for c := range mean {
		mean[c] = float32(0.3 + 0.4*rng.Float64())
	}
	contrast := 0.06 + 0.12*rng.Float64()
	planes := 1 // one pattern shared by the channels (a grey texture)
	if class == 3 {
		planes = 3
	}
	pat := make([]float32, planes*n)
	switch class {
	case 0, 1:
		copy(pat, lowFrequency(rng, 4+2*class))
		if class == 0 {
			contrast = 0.01 + 0.03*rng.Float64()
		} else {
			contrast = 0.08 + 0.1*rng.Float64()
		}
	case 2, 3:
		for k := range pat {
			pat[k] = float32(rng.NormFloat64())
		}
	case 4, 5, 6, 7:
		angle := [...]float64{0, math.Pi / 2, math.Pi/4 + math.Pi/2*float64(rng.IntN(2)), math.Pi * rng.Float64()}[class-4]
		period := 5 + 3*rng.Float64()
		if class == 7 {
			period = 2.2 + 0.8*rng.Float64()
		}
		sines(pat, angle, period, rng)
	case 8:
		period := 6 + 4*rng.Float64()
		px, py := rng.Float64()*period, rng.Float64()*period
		for y := range bundledSide {
			for x := range bundledSide {
				if (int(math.Floor((float64(x)+px)/period*2))+int(math.Floor((float64(y)+py)/period*2)))%2 == 0 {
					pat[y*bundledSide+x] = 1
				}
			}
		}
	case 9:
		sign := float32(1 - 2*rng.IntN(2)) // bright or dark dots
		for range 6 + rng.IntN(7) {
			cx, cy, r := rng.Float64()*bundledSide, rng.Float64()*bundledSide, 1+rng.Float64()
			for y := range bundledSide {
				for x := range bundledSide {
					if math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy) <= r {
						pat[y*bundledSide+x] = sign
					}
				}
			}
		}
	}
	// Slight sensor noise keeps patterns from being exactly periodic.
	for k := range pat {
		pat[k] += float32(0.05 * rng.NormFloat64())
	}
	for p := range planes {
		standardise(pat[p*n:(p+1)*n], float32(contrast))
	}
	// A grey texture is tinted by a per-image colour direction near grey.
	var tint [3]float32
	for c := range tint {
		tint[c] = float32(0.85 + 0.3*rng.Float64())
	}
	// Shrink the whole pattern (never clip) to stay inside [0.02, 0.98].
	scale := float32(1)
	for c := range 3 {
		room := min(mean[c], 1-mean[c]) - 0.02
		for k := range n {
			d := textureDev(pat, planes, tint, c, k)
			if a := float32(math.Abs(float64(d))); a*scale > room {
				scale = room / a
			}
		}
	}
	for c := range 3 {
		for k := range n {
			dst.Pix[c*n+k] = mean[c] + scale*textureDev(pat, planes, tint, c, k)
		}
	}
}

// textureDev is pixel k's deviation from the mean in channel c.
func textureDev(pat []float32, planes int, tint [3]float32, c, k int) float32 {
	if planes == 3 {
		return pat[c*bundledSide*bundledSide+k]
	}
	return tint[c] * pat[k]
}

// lowFrequency is a grid x grid field of Gaussian noise bilinearly enlarged
// to the image size: smooth blobs about bundledSide/grid pixels across.
func lowFrequency(rng *rand.Rand, grid int) []float32 {
	g := NewImage(1, grid, grid)
	for k := range g.Pix {
		g.Pix[k] = float32(rng.NormFloat64())
	}
	return resize(g, 0, 0, grid, grid, bundledSide, bundledSide).Pix
}

// sines fills dst with a sine wave whose crests run at angle (radians from
// the x axis), of the given period in pixels and a random phase.
func sines(dst []float32, angle, period float64, rng *rand.Rand) {
	phase := 2 * math.Pi * rng.Float64()
	// The wave travels perpendicular to its crests.
	kx, ky := -math.Sin(angle)*2*math.Pi/period, math.Cos(angle)*2*math.Pi/period
	for y := range bundledSide {
		for x := range bundledSide {
			dst[y*bundledSide+x] = float32(math.Sin(kx*float64(x) + ky*float64(y) + phase))
		}
	}
}

// standardise makes p zero-mean with standard deviation std, exactly, so
// that adding it leaves an image's mean colour unchanged.
func standardise(p []float32, std float32) {
	var s, sq float64
	for _, v := range p {
		s += float64(v)
	}
	m := s / float64(len(p))
	for _, v := range p {
		sq += (float64(v) - m) * (float64(v) - m)
	}
	sd := math.Sqrt(sq / float64(len(p)))
	if sd == 0 {
		clear(p)
		return
	}
	for k, v := range p {
		p[k] = float32((float64(v) - m) / sd * float64(std))
	}
}
