package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

// PeakRSS runs f and returns the peak resident size of the process while
// it ran minus the resident size before it, in bytes: the memory f needed
// beyond what was already held. Garbage is collected and returned to the
// system first, so that the base is what is live. The peak is Linux's
// VmHWM, reset through /proc/self/clear_refs; other systems get an error.
// PyTorch's peer takes the same measure of itself.
func PeakRSS(f func() error) (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	base, err := statusBytes("VmRSS")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("bench: resetting the peak resident size: %w", err)
	}
	if err := f(); err != nil {
		return 0, err
	}
	peak, err := statusBytes("VmHWM")
	return peak - base, err
}

// statusBytes reads a size field of /proc/self/status, which it gives in
// KiB.
func statusBytes(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("bench: memory use: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		kib, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/self/status %s: %q: %w", field, rest, err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("bench: /proc/self/status has no %s", field)
}
