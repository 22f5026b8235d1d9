package gpucheck

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/srmlab/srmlab/tensor"
)

// ReLU kinks. A ReLU's gradient jumps at 0. Where its input lies within
// rounding of 0, the GPU in float32 and the reference in float64 may land
// on opposite sides, each right to its precision, and the gradient through
// that element then differs by all of it; BatchNorm over the batch passes
// the difference on to every value of the channel upstream, so one element
// can move hundreds of gradients far past any rounding limit. Among the
// millions of ReLU outputs of a ResNet-50 step a few sit that close to 0 at
// most seeds. So a whole-model comparison pairs the ReLU outputs of the two
// graphs before the backward pass and, where their masks differ, moves the
// reference's element to the GPU's side, which changes the reference's
// forward values by no more than rounding and its gradient to the one the
// GPU's mask defines. A differing element whose value is larger than
// rounding is not a kink but an error, and fails the check.

// kinkSlack is how many times the largest difference between two ReLU
// outputs where their masks agree a differing element may be and still
// count as rounding.
const kinkSlack = 4

// flip is one ReLU output whose masks differed.
type flip struct {
	key   string
	count int
	ratio float64 // the largest differing value over the rounding allowed
	rel   float64 // the largest differing value over the output's largest
}

// kinks pairs the ReLU outputs of the reference graph below ref with
// those below other's (another engine's) and aligns the reference's masks
// with the other's (see above). names maps each side's parameters to their
// names, which key the pairing. The Result is OK when every differing
// element was within rounding. A ReLU that one engine computes inside a
// fused kernel (SE's hidden layer on the GPU) has no output to pair with
// and is counted as unpaired.
func kinks(c, engine string, ref, other *tensor.Tensor, refNames, otherNames map[*tensor.Tensor]string) Result {
	refs := reluOutputs(ref, refNames, nil)
	others := reluOutputs(other, otherNames, refs) // only what can pair: a GPU result is a download
	keys := make([]string, 0, len(refs))
	for k := range refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var flips []flip
	paired, unpaired := 0, 0
	for _, k := range keys {
		rs, os := refs[k], others[k]
		if len(rs) != len(os) {
			unpaired += len(rs)
			continue
		}
		for i, r := range rs {
			if !tensor.SameShape(r.t, os[i].t) {
				unpaired++
				continue
			}
			paired++
			if f, at := alignMasks(r.v, os[i].v); f.count > 0 {
				f.key = k
				flips = append(flips, f)
				for i, v := range at {
					r.t.Set(i, v)
				}
			}
		}
	}
	res := Result{Case: c, Quantity: "ReLU masks " + engine, Limit: 1}
	pairs := fmt.Sprintf("%d ReLU outputs", paired)
	if unpaired > 0 {
		pairs += fmt.Sprintf(" (%d more inside fused kernels)", unpaired)
	}
	if len(flips) == 0 {
		res.Note = "agree in all " + pairs
		return res
	}
	sort.Slice(flips, func(i, j int) bool { return flips[i].ratio > flips[j].ratio })
	n := 0
	var where []string
	for _, f := range flips {
		n += f.count
		res.RelErr = max(res.RelErr, f.ratio)
		if len(where) < 4 {
			where = append(where, fmt.Sprintf("%s ×%d at %.1e of its largest", f.key, f.count, f.rel))
		}
	}
	res.Note = fmt.Sprintf("%d elements of %d of %s on opposite sides of 0, set to the %s's side: %s",
		n, len(flips), pairs, engine, strings.Join(where, "; "))
	return res
}

// alignMasks compares a reference ReLU output with the other engine's and
// returns the elements where their masks differ with the other's values,
// which the caller writes into the reference. The flip's ratio is the
// largest such value over kinkSlack times the largest difference where the
// masks agree: at most 1 when every flip is within rounding.
func alignMasks(ref, other []float64) (flip, map[int]float64) {
	var agree, scale float64
	for i, r := range ref {
		scale = max(scale, r)
		if (r > 0) == (other[i] > 0) {
			agree = max(agree, math.Abs(r-other[i]))
		}
	}
	var f flip
	at := map[int]float64{}
	for i, r := range ref {
		if (r > 0) == (other[i] > 0) {
			continue
		}
		v := max(r, other[i])
		f.count++
		f.ratio = max(f.ratio, v/(kinkSlack*agree)) // +Inf where the rest agrees exactly
		f.rel = max(f.rel, v/scale)
		at[i] = other[i]
	}
	return f, at
}

// reluOutput reports whether v looks like the output of a ReLU: no
// negative value and at least 5 % exact zeros.
func reluOutput(v []float64) bool {
	zeros := 0
	for _, x := range v {
		if x < 0 || math.IsNaN(x) {
			return false
		}
		if x == 0 {
			zeros++
		}
	}
	return len(v) > 0 && zeros*20 >= len(v)
}

// valued is a result with its values.
type valued struct {
	t *tensor.Tensor
	v []float64
}

// reluOutputs finds the results of the graph below t that look like ReLU
// outputs, in the graph's order, under a name that pairs them with another
// engine's: the first parameter the result read (a BatchNorm's output is
// named after its weight), else the name of the first named result it read.
// Engines that fuse differently keep these names: the ReLU ending a block,
// one operation or three, reads the block's last BatchNorm first.
func reluOutputs(t *tensor.Tensor, names map[*tensor.Tensor]string, only map[string][]valued) map[string][]valued {
	keys := map[*tensor.Tensor]string{}
	out := map[string][]valued{}
	for _, r := range t.Graph() {
		k := resultKey(r.Inputs(), names, keys)
		if k == "" {
			continue
		}
		keys[r] = k
		if _, ok := only[k]; only != nil && !ok {
			continue
		}
		if v := r.Float64s(); reluOutput(v) {
			out[k] = append(out[k], valued{r, v})
		}
	}
	return out
}

// resultKey is reluOutputs' name for a result that read ins: the first
// named parameter among them, else the first named result's name.
func resultKey(ins []*tensor.Tensor, names, keys map[*tensor.Tensor]string) string {
	for _, in := range ins {
		if n, ok := names[in]; ok {
			return n
		}
	}
	for _, in := range ins {
		if k := keys[in]; k != "" {
			return k
		}
	}
	return ""
}
