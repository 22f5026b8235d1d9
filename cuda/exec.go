package cuda

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// executor runs closures one at a time on a single goroutine locked to its
// OS thread. The driver keeps the current context per OS thread and the Go
// scheduler moves goroutines between threads at will, so every CUDA call
// goes through here: the context is made current once, on this thread, and
// stays current. Serialising also makes the device's bookkeeping (allocator,
// module cache) safe without locks.
type executor struct {
	work chan func()
	done chan struct{}
}

func newExecutor() *executor {
	e := &executor{work: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer close(e.done)
		for f := range e.work {
			f()
		}
	}()
	return e
}

// do runs f on the CUDA thread and waits for it. A panic in f becomes an
// error, so that one bad call cannot take the thread down with it and
// leave every later caller blocked.
func (e *executor) do(f func() error) error {
	errc := make(chan error, 1)
	e.work <- func() {
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("cuda: panic on the CUDA thread: %v\n%s", r, debug.Stack())
			}
		}()
		errc <- f()
	}
	return <-errc
}

// stop ends the CUDA thread once queued work has run; the thread stays
// locked until it exits, so the OS thread dies with it rather than going
// back to the scheduler with a context still current.
func (e *executor) stop() {
	close(e.work)
	<-e.done
}
