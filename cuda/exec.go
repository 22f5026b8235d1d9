package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// executor serialises the CUDA calls of one device and runs each batch of
// them on the calling goroutine's OS thread with the device's context
// current there. The driver keeps the current context per OS thread, and
// the Go scheduler moves goroutines between threads at will, so a batch
// locks its goroutine to the thread for its duration and makes the context
// current first (a thread-local store in the driver). A single goroutine
// locked to one thread, which the first version used, cost two OS thread
// switches per call: some 100 µs per operation of a training step, more
// than the GPU's own time for most of them. The mutex also keeps the
// device's bookkeeping (allocator, module cache) consistent. Elsewhere in
// the package, "on the CUDA thread" means inside do: under the lock, on a
// locked OS thread with the context current.
type executor struct {
	mu     sync.Mutex
	enter  func() error // makes the context current; nil until there is one
	closed bool
}

func newExecutor() *executor { return &executor{} }

// do runs f with the lock held, on a locked OS thread with the context
// current. A panic in f becomes an error, so that one bad call cannot leave
// the lock held.
func (e *executor) do(f func() error) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("cuda: the device is closed")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cuda: panic in a CUDA call: %v\n%s", r, debug.Stack())
		}
	}()
	if e.enter != nil {
		if err := e.enter(); err != nil {
			return err
		}
	}
	return f()
}

// setContext makes every later batch run with the context current.
func (e *executor) setContext(enter func() error) {
	e.mu.Lock()
	e.enter = enter
	e.mu.Unlock()
}

// stop refuses every later call; the caller has released the context.
func (e *executor) stop() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}
