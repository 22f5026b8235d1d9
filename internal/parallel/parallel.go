// Package parallel splits loops over independent items across the machine's
// cores. The split depends only on the item count and GOMAXPROCS, and every
// item is computed by exactly one goroutine, so results are bitwise the same
// run to run.
package parallel

import (
	"runtime"
	"sync"
)

// For calls body(lo, hi) on disjoint ranges covering [0, n), in parallel
// when n·cost (a rough per-item work estimate in elementary operations) is
// large enough to pay for the goroutines.
func For(n, cost int, body func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n*cost < 1<<15 {
		if n > 0 {
			body(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	wg.Wait()
}
