package datasets

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gobolditalic"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

var (
	// Letters that are their own mirror image, so the horizontal flip of
	// the standard augmentation preserves the label, as it does for
	// Office-Home's objects (a flipped digit may read as another).
	glyphClasses = []string{"A", "H", "M", "O", "T", "U", "V", "W", "X", "Y"}
	glyphDomains = []string{"flat", "sketch", "photo", "pixel"}
)

// Glyphs generates "domains", a stand-in for Office-Home: ten mirror-
// symmetric capital letters (A H M O T U V W X Y), each drawn in four
// visual styles, each style a domain:
//
//	flat    a flat-colour letter on a plain ground of another colour (Clipart)
//	sketch  the letter's outline in dark ink on light, grainy paper (Art)
//	photo   a shaded letter on a cluttered, smoothly varying ground with
//	        sensor noise (Real World)
//	pixel   the letter on a 16x16 grid of blocks in a small palette, with
//	        a drop shadow (a style of its own, as Product is)
//
// The letters come from the Go fonts that ship inside golang.org/x/image
// (seven faces, so nothing needs installing), rendered once at 64 px and
// placed with a random scale (0.8-1.15), rotation (up to 15 degrees) and
// shift (up to 3 px). Colours are random per image, so only shape tells the
// class and only style tells the domain. Defaults: 80 train and 20 test
// images per class per domain, 4,000 in all, 32x32 RGB.
func Glyphs(cfg BundledConfig) (*Splits, error) {
	masks, err := glyphMasks()
	if err != nil {
		return nil, err
	}
	paint := func(i int, rng *rand.Rand, dst Image) {
		class, dom := i%len(glyphClasses), i/len(glyphClasses)%len(glyphDomains)
		a := placeGlyph(&masks[rng.IntN(len(masks))][class], rng)
		glyphStyles[dom](a, rng, dst)
	}
	return generate(cfg, 80, 20, streamGlyphs, glyphClasses, glyphDomains, paint)
}

// maskSide is the resolution glyphs are rendered at: twice the image size,
// so placing them can average 2x2 samples into each pixel.
const maskSide = 2 * bundledSide

type mask [maskSide * maskSide]float32

var glyphFaces = [][]byte{goregular.TTF, gobold.TTF, goitalic.TTF, gobolditalic.TTF, gomedium.TTF, gomono.TTF, gomonobold.TTF}

// glyphMasks renders every letter in every face once; it is shared by all
// calls and goroutines.
var glyphMasks = sync.OnceValues(func() ([][]mask, error) {
	out := make([][]mask, len(glyphFaces))
	for f, ttf := range glyphFaces {
		fnt, err := opentype.Parse(ttf)
		if err != nil {
			return nil, fmt.Errorf("datasets: glyph font %d: %w", f, err)
		}
		face, err := opentype.NewFace(fnt, &opentype.FaceOptions{Size: 54, DPI: 72, Hinting: font.HintingNone})
		if err != nil {
			return nil, fmt.Errorf("datasets: glyph font %d: %w", f, err)
		}
		out[f] = make([]mask, len(glyphClasses))
		for d, s := range glyphClasses {
			dst := image.NewAlpha(image.Rect(0, 0, maskSide, maskSide))
			dr := font.Drawer{Dst: dst, Src: image.Opaque, Face: face}
			b, _ := dr.BoundString(s)
			// Centre the ink box, not the advance box.
			cx := (b.Min.X + b.Max.X) / 2
			cy := (b.Min.Y + b.Max.Y) / 2
			dr.Dot = fixed.Point26_6{X: fixed.I(maskSide/2) - cx, Y: fixed.I(maskSide/2) - cy}
			dr.DrawString(s)
			for k, v := range dst.Pix {
				out[f][d][k] = float32(v) / 255
			}
		}
		face.Close()
	}
	return out, nil
})

// placeGlyph draws the glyph's coverage at image resolution under a random
// similarity transform, averaging 2x2 bilinear samples per pixel.
func placeGlyph(m *mask, rng *rand.Rand) []float32 {
	scale := 0.8 + 0.35*rng.Float64()
	theta := (rng.Float64()*2 - 1) * 15 * math.Pi / 180
	tx, ty := (rng.Float64()*2-1)*3, (rng.Float64()*2-1)*3
	cos, sin := math.Cos(theta), math.Sin(theta)
	// Each image pixel spans 2/scale mask pixels.
	k := maskSide / float64(bundledSide) / scale
	out := make([]float32, bundledSide*bundledSide)
	for y := range bundledSide {
		for x := range bundledSide {
			var acc float32
			for _, s := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				dx := float64(x) + s[0] - bundledSide/2 - tx
				dy := float64(y) + s[1] - bundledSide/2 - ty
				mx := (cos*dx+sin*dy)*k + maskSide/2
				my := (-sin*dx+cos*dy)*k + maskSide/2
				acc += m.at(mx, my)
			}
			out[y*bundledSide+x] = acc / 4
		}
	}
	return out
}

// at samples the mask bilinearly at continuous coordinates (pixel centres
// at +0.5), reading zero outside it.
func (m *mask) at(x, y float64) float32 {
	x, y = x-0.5, y-0.5
	x0, y0 := int(math.Floor(x)), int(math.Floor(y))
	fx, fy := float32(x-float64(x0)), float32(y-float64(y0))
	get := func(px, py int) float32 {
		if px < 0 || py < 0 || px >= maskSide || py >= maskSide {
			return 0
		}
		return m[py*maskSide+px]
	}
	top := get(x0, y0)*(1-fx) + get(x0+1, y0)*fx
	bot := get(x0, y0+1)*(1-fx) + get(x0+1, y0+1)*fx
	return top*(1-fy) + bot*fy
}

// A glyphStyle paints a domain's rendering of coverage a (1 on the letter).
type glyphStyle func(a []float32, rng *rand.Rand, dst Image)

var glyphStyles = []glyphStyle{flatStyle, sketchStyle, photoStyle, pixelStyle}

type rgb [3]float32

func randomColour(rng *rand.Rand) rgb {
	return rgb{rng.Float32(), rng.Float32(), rng.Float32()}
}

func luma(c rgb) float32 { return 0.299*c[0] + 0.587*c[1] + 0.114*c[2] }

// contrasting draws a figure colour that differs enough in brightness from
// ground for the letter to be legible.
func contrasting(ground rgb, rng *rand.Rand) rgb {
	for {
		figure := randomColour(rng)
		if d := luma(ground) - luma(figure); d > 0.3 || d < -0.3 {
			return figure
		}
	}
}

// blend writes ground*(1-a) + figure*a per pixel, with optional per-pixel
// colours (nil: the constant one).
func blend(dst Image, a []float32, ground, figure rgb, groundField, figureField []rgb) {
	n := len(a)
	for k, w := range a {
		g, f := ground, figure
		if groundField != nil {
			g = groundField[k]
		}
		if figureField != nil {
			f = figureField[k]
		}
		for c := range 3 {
			dst.Pix[c*n+k] = g[c]*(1-w) + f[c]*w
		}
	}
}

func flatStyle(a []float32, rng *rand.Rand, dst Image) {
	ground := randomColour(rng)
	blend(dst, a, ground, contrasting(ground, rng), nil, nil)
}

func sketchStyle(a []float32, rng *rand.Rand, dst Image) {
	paper := rgb{0.88 + 0.1*rng.Float32(), 0.86 + 0.1*rng.Float32(), 0.8 + 0.1*rng.Float32()}
	ink := rgb{0.25 * rng.Float32(), 0.25 * rng.Float32(), 0.35 * rng.Float32()}
	// The outline is where coverage changes: its gradient magnitude.
	edge := make([]float32, len(a))
	get := func(x, y int) float32 {
		x, y = min(max(x, 0), bundledSide-1), min(max(y, 0), bundledSide-1)
		return a[y*bundledSide+x]
	}
	for y := range bundledSide {
		for x := range bundledSide {
			gx := get(x+1, y) - get(x-1, y)
			gy := get(x, y+1) - get(x, y-1)
			e := float32(math.Sqrt(float64(gx*gx+gy*gy))) * (0.8 + 0.4*rng.Float32())
			edge[y*bundledSide+x] = min(e, 1)
		}
	}
	blend(dst, edge, paper, ink, nil, nil)
	addNoise(dst, 0.03, rng)
}

func photoStyle(a []float32, rng *rand.Rand, dst Image) {
	n := len(a)
	ground := make([]rgb, n)
	for c := range 3 {
		base, f := 0.25+0.5*rng.Float32(), lowFrequency(rng, 4)
		for k := range ground {
			ground[k][c] = base + 0.12*f[k]
		}
	}
	// Clutter: two faint rectangles behind the letter.
	for range 2 {
		col := randomColour(rng)
		x0, y0 := rng.IntN(bundledSide), rng.IntN(bundledSide)
		w, h := 4+rng.IntN(12), 4+rng.IntN(12)
		for y := y0; y < min(y0+h, bundledSide); y++ {
			for x := x0; x < min(x0+w, bundledSide); x++ {
				for c := range 3 {
					ground[y*bundledSide+x][c] = 0.6*ground[y*bundledSide+x][c] + 0.4*col[c]
				}
			}
		}
	}
	var avg rgb
	for _, g := range ground {
		for c := range 3 {
			avg[c] += g[c] / float32(n)
		}
	}
	// The letter is lit from a random direction.
	base := contrasting(avg, rng)
	lx, ly := rng.Float64()*2-1, rng.Float64()*2-1
	figure := make([]rgb, n)
	for k := range figure {
		x, y := float64(k%bundledSide)/bundledSide-0.5, float64(k/bundledSide)/bundledSide-0.5
		shade := float32(1 + 0.6*(lx*x+ly*y))
		for c := range 3 {
			figure[k][c] = base[c] * shade
		}
	}
	blend(dst, a, rgb{}, rgb{}, ground, figure)
	addNoise(dst, 0.05, rng)
}

// pixelPalette is a small fixed palette, as pixel art is drawn with.
var pixelPalette = []rgb{
	{0, 0, 0}, {1, 1, 1}, {0.85, 0.15, 0.15}, {0.15, 0.6, 0.2}, {0.15, 0.3, 0.85},
	{0.95, 0.8, 0.1}, {0.55, 0.2, 0.65}, {0.1, 0.7, 0.75}, {0.95, 0.5, 0.1}, {0.5, 0.5, 0.5},
}

func pixelStyle(a []float32, rng *rand.Rand, dst Image) {
	const block = 2
	const cells = bundledSide / block
	var on [cells * cells]bool
	for cy := range cells {
		for cx := range cells {
			var s float32
			for y := cy * block; y < (cy+1)*block; y++ {
				for x := cx * block; x < (cx+1)*block; x++ {
					s += a[y*bundledSide+x]
				}
			}
			on[cy*cells+cx] = s > 0.35*block*block
		}
	}
	p := rng.Perm(len(pixelPalette))
	ground, figure, shadow := pixelPalette[p[0]], pixelPalette[p[1]], pixelPalette[p[2]]
	cov := make([]float32, len(a))
	field := make([]rgb, len(a))
	for y := range bundledSide {
		for x := range bundledSide {
			cx, cy := x/block, y/block
			k := y*bundledSide + x
			field[k] = ground
			if cx > 0 && cy > 0 && on[(cy-1)*cells+cx-1] {
				field[k] = shadow
			}
			if on[cy*cells+cx] {
				cov[k] = 1
			}
		}
	}
	blend(dst, cov, rgb{}, figure, field, nil)
}

func addNoise(dst Image, std float64, rng *rand.Rand) {
	for k := range dst.Pix {
		dst.Pix[k] += float32(std * rng.NormFloat64())
	}
}
