package datasets

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// Batch is N examples stacked in NCHW order, the layout of srmlab's
// tensors, so the engine copies X as is.
type Batch struct {
	X          []float32 // N*C*H*W
	N, C, H, W int
	Labels     []int
	// Domains holds each example's domain, or is nil when the data set
	// has none.
	Domains []int
	// Indices are the examples' indices in the Dataset, for tracing a
	// batch back to its files.
	Indices []int
	// Index is the batch's number within its epoch.
	Index int
}

// LoaderConfig sets how a Loader batches a Dataset.
type LoaderConfig struct {
	BatchSize int
	Shuffle   bool
	// DropLast drops a final batch smaller than BatchSize, which keeps
	// BatchNorm statistics from a handful of examples out of training.
	DropLast bool
	// Seed fixes the shuffle and the augmentation; with the epoch it
	// determines every bit of every batch.
	Seed uint64
	// Transform augments each example; nil keeps images as decoded.
	Transform Transform
	// Workers is the number of decoding goroutines; 0 means GOMAXPROCS.
	Workers int
	// InFlight bounds the batches being decoded or waiting for the
	// consumer, and with them the loader's memory; 0 means 2.
	InFlight int
}

// Loader streams a Dataset's epochs as batches.
type Loader struct {
	ds  Dataset
	cfg LoaderConfig
}

// NewLoader checks cfg against ds.
func NewLoader(ds Dataset, cfg LoaderConfig) (*Loader, error) {
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("datasets: batch size %d", cfg.BatchSize)
	}
	if cfg.Workers < 0 || cfg.InFlight < 0 {
		return nil, fmt.Errorf("datasets: %d workers, %d batches in flight", cfg.Workers, cfg.InFlight)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.InFlight == 0 {
		cfg.InFlight = 2
	}
	return &Loader{ds: ds, cfg: cfg}, nil
}

// Len is the number of batches in an epoch.
func (l *Loader) Len() int {
	n := l.ds.Len()
	if l.cfg.DropLast {
		return n / l.cfg.BatchSize
	}
	return (n + l.cfg.BatchSize - 1) / l.cfg.BatchSize
}

// Order returns the dataset indices of an epoch in the order they are
// batched.
func (l *Loader) Order(epoch int) []int {
	n := l.ds.Len()
	if !l.cfg.Shuffle {
		return identityRows(n)
	}
	return permutation(n, randSource(streamShuffle, l.cfg.Seed, uint64(epoch)))
}

// Stream starts epoch at batch start (0 for a whole epoch), the point a
// resumed run left off. Its batches are bitwise those that a stream started
// at 0 yields from batch start on. Cancelling ctx stops the decoding; Close
// the Stream in any case to release its goroutines.
func (l *Loader) Stream(ctx context.Context, epoch, start int) (*Stream, error) {
	nb := l.Len()
	if start < 0 || start > nb {
		return nil, fmt.Errorf("datasets: start batch %d of an epoch of %d", start, nb)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan struct{}, l.cfg.InFlight),
		order:  make(chan *pending, l.cfg.InFlight),
	}
	jobs := make(chan job)
	order := l.Order(epoch)
	s.wg.Add(1 + l.cfg.Workers)
	go func() {
		defer s.wg.Done()
		defer close(jobs)
		defer close(s.order)
		for b := start; b < nb; b++ {
			select {
			case s.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			lo, hi := b*l.cfg.BatchSize, min((b+1)*l.cfg.BatchSize, len(order))
			// Capped, so that a caller appending to Indices cannot
			// reach into the next batch's.
			p := newPending(b, order[lo:hi:hi])
			s.order <- p // never blocks: a slot is held for p
			for j := range p.idx {
				select {
				case jobs <- job{p, j}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	for range l.cfg.Workers {
		go func() {
			defer s.wg.Done()
			for jb := range jobs {
				l.decode(jb, epoch)
			}
		}()
	}
	return s, nil
}

// decode fills one example of a pending batch; the worker that fills the
// last one assembles the batch.
func (l *Loader) decode(jb job, epoch int) {
	p, j := jb.p, jb.j
	i := p.idx[j]
	s, err := l.ds.Sample(i)
	if err == nil && l.cfg.Transform != nil {
		s.Image, err = l.cfg.Transform.Apply(s.Image, newSampleRNG(l.cfg.Seed, epoch, i))
		if err != nil {
			err = fmt.Errorf("datasets: sample %d: %w", i, err)
		}
	}
	p.samples[j], p.errs[j] = s, err
	if p.left.Add(-1) == 0 {
		p.assemble(l.ds.Domains() != nil)
		close(p.done)
	}
}

// Stream yields the batches of one epoch in order.
type Stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{} // one token per batch in flight
	order  chan *pending // batches in the order they are yielded
	batch  *Batch
	err    error
}

// Next waits for the next batch and reports whether there is one; after it
// returns false, Err tells whether the epoch ended or failed.
func (s *Stream) Next() bool {
	s.batch = nil
	if s.err != nil {
		return false
	}
	var p *pending
	var ok bool
	select {
	case p, ok = <-s.order:
	case <-s.ctx.Done():
	}
	if p == nil {
		if !ok && s.ctx.Err() == nil {
			return false // the epoch is done
		}
		s.fail(s.ctx.Err())
		return false
	}
	select {
	case <-p.done:
	case <-s.ctx.Done():
		s.fail(s.ctx.Err())
		return false
	}
	<-s.slots
	if p.err != nil {
		s.fail(p.err)
		return false
	}
	s.batch = p.batch
	return true
}

// Batch is the batch that the last successful Next waited for. It belongs to
// the caller: the Stream never writes to it again.
func (s *Stream) Batch() *Batch { return s.batch }

// Err is the error that stopped the stream: a decoding or augmentation
// error, or the context's error; nil after a complete epoch.
func (s *Stream) Err() error { return s.err }

// Close stops the stream and waits for its goroutines.
func (s *Stream) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Stream) fail(err error) {
	s.err = err
	s.cancel()
}

type job struct {
	p *pending
	j int
}

// pending is a batch being decoded. Workers write disjoint entries of
// samples and errs, so they share it without locks.
type pending struct {
	index   int
	idx     []int
	samples []Sample
	errs    []error
	left    atomic.Int64
	done    chan struct{}
	batch   *Batch
	err     error
}

func newPending(b int, idx []int) *pending {
	p := &pending{index: b, idx: idx, samples: make([]Sample, len(idx)), errs: make([]error, len(idx)), done: make(chan struct{})}
	p.left.Store(int64(len(idx)))
	return p
}

// assemble stacks the samples, reporting the failure of the lowest position
// so that the error, like the data, does not depend on timing.
func (p *pending) assemble(withDomains bool) {
	for _, err := range p.errs {
		if err != nil {
			p.err = err
			return
		}
	}
	first := p.samples[0].Image
	b := &Batch{N: len(p.idx), C: first.C, H: first.H, W: first.W, Labels: make([]int, len(p.idx)), Indices: p.idx, Index: p.index}
	if withDomains {
		b.Domains = make([]int, len(p.idx))
	}
	size := first.C * first.H * first.W
	b.X = make([]float32, 0, b.N*size)
	for j, s := range p.samples {
		img := s.Image
		if img.C != b.C || img.H != b.H || img.W != b.W {
			p.err = fmt.Errorf("datasets: batch %d: sample %d is %dx%dx%d, sample %d is %dx%dx%d; add a crop to the transform",
				p.index, p.idx[j], img.C, img.H, img.W, p.idx[0], b.C, b.H, b.W)
			return
		}
		b.X = append(b.X, img.Pix...)
		b.Labels[j] = s.Label
		if withDomains {
			b.Domains[j] = s.Domain
		}
	}
	p.batch, p.samples = b, nil
}

// The package's random streams, kept apart so that, say, the shuffle of an
// epoch and the augmentation of its samples never share bits.
const (
	streamShuffle uint64 = iota + 1
	streamAugment
	streamSplit
	streamTextures
	streamGlyphs
)

// randSource is a generator determined by a stream and a tuple of values
// (seed, epoch, index, ...) alone, the package's one way of getting
// randomness.
func randSource(stream uint64, vals ...uint64) *rand.PCG {
	return rand.NewPCG(mix(vals...), mix(stream))
}

// newSampleRNG is the generator that augments example i in an epoch: it
// depends on nothing else, in particular not on which goroutine runs it.
func newSampleRNG(seed uint64, epoch, i int) *rand.Rand {
	return rand.New(randSource(streamAugment, seed, uint64(epoch), uint64(i)))
}

// mix hashes a seed, an epoch and an index into one well-spread value
// (SplitMix64's finaliser applied in turn), so neighbouring samples and
// epochs get unrelated generators.
func mix(vals ...uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range vals {
		h ^= v
		h += 0x9e3779b97f4a7c15
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
		h = (h ^ (h >> 27)) * 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

// permutation is a Fisher-Yates shuffle written out here rather than
// rand.Perm, whose algorithm the standard library may change between Go
// releases: a checkpoint resumed under a newer Go must see the same order.
func permutation(n int, src rand.Source) []int {
	p := identityRows(n)
	for i := n - 1; i > 0; i-- {
		hi, _ := bits.Mul64(src.Uint64(), uint64(i+1))
		j := int(hi)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
