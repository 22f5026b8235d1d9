package kernel

import (
	"bytes"
	"io"
	"os"
	"sync"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// capture sends what a running cell writes to the process's standard
// output and error to the notebook. It swaps file descriptors 1 and 2 for
// pipes, rather than os.Stdout and os.Stderr, because compiled packages
// print through the descriptors (and may hold their own *os.File for
// them); interpreted fmt.Print goes the same way.
type capture struct {
	// log is a duplicate of the original standard error, where the kernel
	// logs while a cell owns descriptor 2.
	log *os.File
	// saved duplicates keep the original descriptors to restore.
	saved [2]int
	mu    sync.Mutex
	run   *captureRun // the cell being captured; nil between cells
}

// captureRun is one cell's redirection.
type captureRun struct {
	streams [2]*stream
}

// stream forwards one pipe; a flush marker written into the pipe tells
// when everything written before it has been forwarded, which keeps
// printed text and displayed bundles in the order the cell produced them.
type stream struct {
	name    string
	w       *os.File // the pipe's write end, also dup'ed onto fd 1 or 2
	flushed chan struct{}
	done    chan struct{}
}

// marker cannot come from text a cell prints: it is invalid UTF-8.
var marker = []byte("\xff\xfesrmlab-flush\xfe\xff")

func newCapture() (*capture, error) {
	c := &capture{}
	for i, fd := range []int{1, 2} {
		d, err := unix.Dup(fd)
		if err != nil {
			return nil, err
		}
		unix.CloseOnExec(d)
		c.saved[i] = d
	}
	logFD, err := unix.Dup(2)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(logFD)
	c.log = os.NewFile(uintptr(logFD), "kernel-log")
	return c, nil
}

// start redirects descriptors 1 and 2 to send until stop.
func (c *capture) start(send func(name, text string)) error {
	run := &captureRun{}
	for i, name := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		s := &stream{name: name, w: w, flushed: make(chan struct{}, 1), done: make(chan struct{})}
		run.streams[i] = s
		go s.forward(r, send)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, fd := range []int{1, 2} {
		if err := unix.Dup2(int(run.streams[i].w.Fd()), fd); err != nil {
			return err
		}
	}
	c.run = run
	return nil
}

// flush returns once everything the cell wrote so far has been sent.
func (c *capture) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run == nil {
		return
	}
	for _, s := range c.run.streams {
		if _, err := s.w.Write(marker); err == nil {
			<-s.flushed
		}
	}
}

// stop restores the descriptors and waits for the pipes to drain.
func (c *capture) stop() {
	c.flush()
	c.mu.Lock()
	run := c.run
	c.run = nil
	for i, fd := range []int{1, 2} {
		_ = unix.Dup2(c.saved[i], fd)
	}
	c.mu.Unlock()
	if run == nil {
		return
	}
	for _, s := range run.streams {
		s.w.Close()
		<-s.done
	}
}

func (s *stream) forward(r *os.File, send func(name, text string)) {
	defer close(s.done)
	defer r.Close()
	var pending []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.Index(pending, marker)
			if i < 0 {
				break
			}
			if i > 0 {
				send(s.name, string(pending[:i]))
			}
			pending = pending[i+len(marker):]
			s.flushed <- struct{}{}
		}
		if k := holdBack(pending); k < len(pending) {
			send(s.name, string(pending[:len(pending)-k]))
			pending = pending[len(pending)-k:]
		}
		if err == io.EOF || err != nil && n == 0 {
			if len(pending) > 0 {
				send(s.name, string(pending))
			}
			return
		}
	}
}

// holdBack is how many trailing bytes to keep for the next read: a
// possible start of a marker, or an incomplete UTF-8 character that would
// turn into replacement characters if sent split.
func holdBack(p []byte) int {
	for k := min(len(marker)-1, len(p)); k > 0; k-- {
		if bytes.HasPrefix(marker, p[len(p)-k:]) {
			return k
		}
	}
	for k := 1; k <= 3 && k <= len(p); k++ {
		b := p[len(p)-k]
		if !utf8.RuneStart(b) {
			continue
		}
		if !utf8.FullRune(p[len(p)-k:]) {
			return k
		}
		break
	}
	return 0
}
