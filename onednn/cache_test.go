package onednn

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCacheLRU checks that a full cache drops the entry used longest ago,
// a get counting as a use.
func TestCacheLRU(t *testing.T) {
	var dropped []string
	c := newCache[int](2, func(v string) { dropped = append(dropped, v) })
	c.put(1, "one")
	c.put(2, "two")
	if v, ok := c.get(1); !ok || v != "one" {
		t.Fatalf("get(1) = %q, %v", v, ok)
	}
	c.put(3, "three") // 2 is the oldest use
	c.put(4, "four")  // then 1
	if !slices.Equal(dropped, []string{"two", "one"}) || c.len() != 2 {
		t.Errorf("dropped %v, %d kept", dropped, c.len())
	}
	if _, ok := c.get(2); ok {
		t.Error("2 still kept")
	}
}

// TestConvCacheBounded runs convolutions of four geometries twice through
// caches of two plans and two reorders: the caches stay within their
// bounds, destroying what they drop, and the second round, which makes
// the dropped primitives again, gives the same bits.
func TestConvCacheBounded(t *testing.T) {
	l, err := load()
	if err != nil {
		t.Skip(err)
	}
	setMax := func(convs, reorders int) (int, int) {
		var oc, or int
		if err := l.do(func() error {
			oc, or = l.convs.max, l.reorders.max
			l.convs.max, l.reorders.max = convs, reorders
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return oc, or
	}
	oc, or := setMax(2, 2)
	defer setMax(oc, or)
	// Count what the caches drop, still destroying it.
	var planDrops, reorderDrops int
	dropPlan, dropReorder := l.convs.drop, l.reorders.drop
	l.convs.drop = func(p *convPlan) { planDrops++; dropPlan(p) }
	l.reorders.drop = func(p *primitive) { reorderDrops++; dropReorder(p) }
	defer func() { l.convs.drop, l.reorders.drop = dropPlan, dropReorder }()
	r := rand.New(rand.NewPCG(5, 6))
	var geoms []ConvGeom
	for _, n := range []int{1, 2, 3, 4} {
		geoms = append(geoms, ConvGeom{N: n, C: 8, H: 9, W: 9, OC: 16, KH: 3, KW: 3, Stride: 1, Pad: 1, Groups: 1})
	}
	type run struct{ y, dx, dw []float32 }
	inputs := make([][3][]float32, len(geoms))
	for i, g := range geoms {
		nx, nw, _, ny := g.sizes()
		inputs[i] = [3][]float32{randoms(r, nx), randoms(r, nw), randoms(r, ny)}
	}
	round := func() []run {
		var out []run
		for i, g := range geoms {
			x, w, dy := inputs[i][0], inputs[i][1], inputs[i][2]
			res := run{make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))}
			if err := ConvForward(g, x, w, nil, res.y, ConvLayouts{}); err != nil {
				t.Fatal(err)
			}
			if err := ConvBackward(g, x, w, dy, ConvGrads{X: res.dx, W: res.dw, SetX: true, SetW: true}, ConvLayouts{DY: Blocked16}); err != nil {
				t.Fatal(err)
			}
			out = append(out, res)
		}
		return out
	}
	first, second := round(), round()
	for i := range geoms {
		if !slices.Equal(first[i].y, second[i].y) || !slices.Equal(first[i].dx, second[i].dx) || !slices.Equal(first[i].dw, second[i].dw) {
			t.Errorf("%+v: the plan made again gives other bits", geoms[i])
		}
	}
	var plans, reorders int
	if err := l.do(func() error { plans, reorders = l.convs.len(), l.reorders.len(); return nil }); err != nil {
		t.Fatal(err)
	}
	if plans > 2 || reorders > 2 {
		t.Errorf("%d plans and %d reorders kept, want 2 at most", plans, reorders)
	}
	// Eight plans made (four geometries, twice), two kept; the reorders
	// from the blocked output gradient, one a geometry and round.
	if planDrops != 6 || reorderDrops < 6 {
		t.Errorf("%d plans and %d reorders dropped, want 6 and at least 6", planDrops, reorderDrops)
	}
}

func randoms(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}
