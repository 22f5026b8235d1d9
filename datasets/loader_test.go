package datasets

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// epochBatches collects every batch of one epoch from batch start on.
func epochBatches(t *testing.T, l *Loader, epoch, start int) []*Batch {
	t.Helper()
	s, err := l.Stream(context.Background(), epoch, start)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []*Batch
	for s.Next() {
		out = append(out, s.Batch())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameBatches(a, b []*Batch) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d and %d batches", len(a), len(b))
	}
	for k := range a {
		x, y := a[k], b[k]
		if x.Index != y.Index || x.N != y.N || x.C != y.C || x.H != y.H || x.W != y.W ||
			!slices.Equal(x.X, y.X) || !slices.Equal(x.Labels, y.Labels) || !slices.Equal(x.Domains, y.Domains) || !slices.Equal(x.Indices, y.Indices) {
			return fmt.Errorf("batch %d differs", k)
		}
	}
	return nil
}

func smallGlyphs(t *testing.T) Dataset {
	sp, err := Glyphs(BundledConfig{TrainPerClass: 3, TestPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	return sp.Train // 120 images
}

// TestLoaderDeterminism runs the same epoch with one goroutine on one core
// and with many goroutines on all cores: augmentation must not depend on
// which goroutine decodes which sample when.
func TestLoaderDeterminism(t *testing.T) {
	ds := smallGlyphs(t)
	norm := Normalize{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.2, 0.2, 0.2}}
	cfg := LoaderConfig{BatchSize: 16, Shuffle: true, Seed: 42, Transform: CIFARTrain(norm)}
	run := func(procs, workers, inFlight int) []*Batch {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c := cfg
		c.Workers, c.InFlight = workers, inFlight
		l, err := NewLoader(ds, c)
		if err != nil {
			t.Fatal(err)
		}
		return epochBatches(t, l, 3, 0)
	}
	ref := run(1, 1, 1)
	if len(ref) != 8 || ref[7].N != 8 || ref[0].Domains == nil {
		t.Fatalf("%d batches, last of %d", len(ref), ref[len(ref)-1].N)
	}
	for _, c := range [][3]int{{2, 2, 2}, {4, 13, 5}, {2, 7, 1}} {
		if err := sameBatches(ref, run(c[0], c[1], c[2])); err != nil {
			t.Errorf("GOMAXPROCS %d, %d workers, %d in flight: %v", c[0], c[1], c[2], err)
		}
	}
	// A batch is each sample's own augmentation, stacked.
	b := ref[2]
	size := b.C * b.H * b.W
	for j, i := range b.Indices {
		s, _ := ds.Sample(i)
		want, _ := cfg.Transform.Apply(s.Image, newSampleRNG(cfg.Seed, 3, i))
		if !slices.Equal(b.X[j*size:(j+1)*size], want.Pix) || b.Labels[j] != s.Label || b.Domains[j] != s.Domain {
			t.Fatalf("batch 2 position %d is not sample %d augmented", j, i)
		}
	}
}

func TestLoaderOrder(t *testing.T) {
	ds := smallGlyphs(t)
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 50, Shuffle: true, Seed: 1})
	a, b := l.Order(0), l.Order(1)
	if slices.Equal(a, b) {
		t.Error("epochs 0 and 1 have the same order")
	}
	if slices.Equal(a, identityRows(ds.Len())) {
		t.Error("shuffled order is the identity")
	}
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	if !slices.Equal(sorted, identityRows(ds.Len())) {
		t.Error("the order is not a permutation")
	}
	if l.Len() != 3 {
		t.Errorf("Len %d, want 3", l.Len())
	}
	l2, _ := NewLoader(ds, LoaderConfig{BatchSize: 50, Shuffle: true, Seed: 1, DropLast: true})
	if !slices.Equal(l2.Order(0), a) {
		t.Error("the same seed gave another order")
	}
	batches := epochBatches(t, l2, 0, 0)
	if l2.Len() != 2 || len(batches) != 2 || batches[1].N != 50 {
		t.Errorf("drop-last: Len %d, %d batches", l2.Len(), len(batches))
	}
	plain, _ := NewLoader(ds, LoaderConfig{BatchSize: 50})
	if bs := epochBatches(t, plain, 5, 0); !slices.Equal(bs[2].Indices, identityRows(120)[100:]) {
		t.Errorf("unshuffled last batch holds %v", bs[2].Indices)
	}
}

func TestLoaderResume(t *testing.T) {
	ds := smallGlyphs(t)
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 16, Shuffle: true, Seed: 9, Transform: RandomCrop{Size: 32, Pad: 4}})
	full := epochBatches(t, l, 2, 0)
	for _, k := range []int{1, 5, 7, 8} {
		if err := sameBatches(full[k:], epochBatches(t, l, 2, k)); err != nil {
			t.Errorf("start at %d: %v", k, err)
		}
	}
	if _, err := l.Stream(context.Background(), 2, 9); err == nil {
		t.Error("start past the end: no error")
	}
}

// gate is a Dataset that records, for each sample it decodes, how many
// batches were started and not yet received, to check the in-flight bound.
type gate struct {
	n, batch int
	received atomic.Int64
	mu       sync.Mutex
	maxAhead int
}

func (g *gate) Len() int          { return g.n }
func (g *gate) Classes() []string { return []string{"x"} }
func (g *gate) Domains() []string { return nil }
func (g *gate) Sample(i int) (Sample, error) {
	ahead := i/g.batch + 1 - int(g.received.Load())
	g.mu.Lock()
	g.maxAhead = max(g.maxAhead, ahead)
	g.mu.Unlock()
	img := NewImage(1, 1, 1)
	img.Pix[0] = float32(i)
	return Sample{Image: img}, nil
}

func TestLoaderInFlight(t *testing.T) {
	for _, inFlight := range []int{1, 3} {
		g := &gate{n: 200, batch: 4}
		l, _ := NewLoader(g, LoaderConfig{BatchSize: 4, Workers: 4, InFlight: inFlight})
		s, _ := l.Stream(context.Background(), 0, 0)
		for s.Next() {
			time.Sleep(200 * time.Microsecond) // a slow consumer
			g.received.Add(1)
		}
		s.Close()
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		// Decoding batch b means batches b-maxAhead+1..b were started;
		// the bound allows inFlight of them plus the one being received.
		if g.maxAhead > inFlight+1 {
			t.Errorf("in flight %d: %d batches ahead of the consumer", inFlight, g.maxAhead)
		}
	}
}

type failing struct{ gate }

func (f *failing) Sample(i int) (Sample, error) {
	if i == 9 || i == 11 {
		return Sample{}, fmt.Errorf("broken sample %d", i)
	}
	img := NewImage(1, 1+i%2, 1)
	return Sample{Image: img}, nil
}

func TestLoaderErrors(t *testing.T) {
	f := &failing{gate{n: 40}}
	l, _ := NewLoader(f, LoaderConfig{BatchSize: 8, Workers: 3})
	s, _ := l.Stream(context.Background(), 0, 0)
	defer s.Close()
	if s.Next() {
		t.Fatal("batch 0 mixes 1x1 and 2x1 images, yet it was yielded")
	}
	wantErr(t, s.Err(), "batch 0", "add a crop")
	// The lowest failing position decides the error, whatever the timing.
	s2, _ := l.Stream(context.Background(), 0, 1)
	defer s2.Close()
	s2.Next()
	wantErr(t, s2.Err(), "broken sample 9")
	if _, err := NewLoader(f, LoaderConfig{}); err == nil {
		t.Error("batch size 0: no error")
	}
}

func TestLoaderCancel(t *testing.T) {
	ds := smallGlyphs(t)
	before := runtime.NumGoroutine()
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 4, Workers: 3})
	ctx, cancel := context.WithCancel(context.Background())
	s, _ := l.Stream(ctx, 0, 0)
	if !s.Next() {
		t.Fatal(s.Err())
	}
	cancel()
	for s.Next() {
	}
	if !errors.Is(s.Err(), context.Canceled) {
		t.Errorf("error %v, want context.Canceled", s.Err())
	}
	s.Close()
	// Close waited for every goroutine of the stream (which may take a
	// moment to exit after signalling that it is done).
	if n := settledGoroutines(before); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
	// Closing early without cancelling also stops the stream.
	s, _ = l.Stream(context.Background(), 0, 0)
	s.Next()
	s.Close()
}

// settledGoroutines waits up to a second for the goroutine count to drop to
// want, returning the count.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	return n
}
