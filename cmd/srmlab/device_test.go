package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/cuda"
)

func TestOpenDevice(t *testing.T) {
	for _, c := range []struct{ name, err string }{
		{"cpu", ""}, {"", ""},
		{"gpu", `--device "gpu": want cpu, cuda or cuda:N`},
		{"cuda:x", `--device "cuda:x": want cpu, cuda or cuda:N`},
		{"cuda:-1", `--device "cuda:-1": want cpu, cuda or cuda:N`},
	} {
		dev, release, err := openDevice(c.name)
		switch {
		case c.err == "" && (err != nil || dev != nil):
			t.Errorf("%q: %v, %v", c.name, dev, err)
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%q: error %v, want %q", c.name, err, c.err)
		}
		if release != nil {
			release()
		}
	}
	// Here, without a GPU, cuda names the flag and says CUDA is unavailable.
	if _, _, err := openDevice("cuda"); err != nil && (!errors.Is(err, cuda.ErrUnavailable) || !strings.HasPrefix(err.Error(), "--device cuda: ")) {
		t.Errorf("cuda without a GPU: %v", err)
	}
}
