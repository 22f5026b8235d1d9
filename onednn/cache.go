package onednn

import "math"

// cache keeps the primitives made for each geometry or layout pair, which
// cost far more to make than to run, up to max of them: a key includes
// the batch size, so a long session (a notebook trying models, batch sizes,
// input sizes) would otherwise keep every one it ever made, each with its
// JIT code and scratch memory. Past max, the entry used longest ago is
// dropped (its primitives destroyed); it is made again if needed. Only the
// library's thread touches a cache, and an entry is used within one call
// of it, so dropping another entry never pulls one from under a call.
type cache[K comparable, V any] struct {
	entries map[K]*cached[V]
	max     int
	tick    uint64 // one more on each use
	drop    func(V)
}

type cached[V any] struct {
	v    V
	used uint64
}

func newCache[K comparable, V any](max int, drop func(V)) *cache[K, V] {
	return &cache[K, V]{entries: map[K]*cached[V]{}, max: max, drop: drop}
}

// get returns the value kept for k, marking it used.
func (c *cache[K, V]) get(k K) (V, bool) {
	e, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.tick++
	e.used = c.tick
	return e.v, true
}

// put keeps v for k, first dropping the least recently used entries while
// the cache is full.
func (c *cache[K, V]) put(k K, v V) {
	for len(c.entries) >= max(c.max, 1) {
		var oldest K
		oldestUse := uint64(math.MaxUint64)
		for key, e := range c.entries {
			if e.used < oldestUse {
				oldest, oldestUse = key, e.used
			}
		}
		c.drop(c.entries[oldest].v)
		delete(c.entries, oldest)
	}
	c.tick++
	c.entries[k] = &cached[V]{v: v, used: c.tick}
}

func (c *cache[K, V]) len() int { return len(c.entries) }
