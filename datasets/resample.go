package datasets

import "math"

// resize scales the h x w window at (top, left) of img to outH x outW with
// PIL's bilinear filter, the one torchvision applies to PIL images: a
// triangle kernel that widens by the shrink factor, so downscaling averages
// (antialiases) instead of skipping pixels, and that reduces to plain
// bilinear interpolation (align_corners=False) when enlarging. It works in
// float32 throughout where PIL rounds to 8 bits between its two passes.
func resize(img Image, top, left, h, w, outH, outW int) Image {
	xs := filterTaps(left, w, outW)
	ys := filterTaps(top, h, outH)
	// The horizontal pass covers only the window's rows.
	mid := make([]float32, outW*h)
	out := NewImage(img.C, outH, outW)
	for c := 0; c < img.C; c++ {
		plane := img.Pix[c*img.H*img.W : (c+1)*img.H*img.W]
		for y := top; y < top+h; y++ {
			row := plane[y*img.W : (y+1)*img.W]
			for x, tp := range xs {
				var acc float32
				for k, wt := range tp.weights {
					acc += wt * row[tp.first+k]
				}
				mid[(y-top)*outW+x] = acc
			}
		}
		dst := out.Pix[c*outH*outW : (c+1)*outH*outW]
		for y, tp := range ys {
			for x := 0; x < outW; x++ {
				var acc float32
				for k, wt := range tp.weights {
					acc += wt * mid[(tp.first-top+k)*outW+x]
				}
				dst[y*outW+x] = acc
			}
		}
	}
	return out
}

type taps struct {
	first   int
	weights []float32
}

// filterTaps computes, for each of out output pixels, the input pixels and
// normalised weights over the window [start, start+size) of an axis,
// following PIL's precompute_coeffs. Taps stop at the window's edges because
// torchvision crops before it resizes.
func filterTaps(start, size, out int) []taps {
	scale := float64(size) / float64(out)
	support := math.Max(scale, 1) // the triangle's half-width, in input pixels
	inv := 1 / math.Max(scale, 1)
	res := make([]taps, out)
	for i := range res {
		center := float64(start) + (float64(i)+0.5)*scale
		lo := max(int(center-support+0.5), start)
		hi := min(int(center+support+0.5), start+size)
		ws := make([]float32, hi-lo)
		raw := make([]float64, hi-lo)
		var total float64
		for k := range raw {
			d := math.Abs((float64(lo+k) - center + 0.5) * inv)
			if d < 1 {
				raw[k] = 1 - d
				total += raw[k]
			}
		}
		for k := range raw {
			if total > 0 {
				ws[k] = float32(raw[k] / total)
			}
		}
		res[i] = taps{first: lo, weights: ws}
	}
	return res
}
