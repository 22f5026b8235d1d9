package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// deviceFlag adds --device, the choice between the CPU (the default) and a
// GPU, to a command that computes.
func deviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "cpu", "where to compute: cpu, or cuda (cuda:N for GPU N) through the CUDA driver, no cgo")
}

// placeModel moves m to the device --device names and returns what
// releases that device.
func placeModel(m *srm.Model, device string) (release func(), err error) {
	dev, release, err := openDevice(device)
	if err != nil {
		return nil, err
	}
	if err := m.To(dev); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// openDevice opens the device --device names: nil for the CPU, else the
// GPU, with the function that releases it.
func openDevice(name string) (tensor.Device, func(), error) {
	ordinal := 0
	switch {
	case name == "cpu" || name == "":
		return nil, func() {}, nil
	case name == "cuda":
	case strings.HasPrefix(name, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(name, "cuda:"))
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("--device %q: want cpu, cuda or cuda:N", name)
		}
		ordinal = n
	default:
		return nil, nil, fmt.Errorf("--device %q: want cpu, cuda or cuda:N", name)
	}
	d, err := cuda.Open(ordinal)
	if err != nil {
		return nil, nil, fmt.Errorf("--device %s: %w", name, err)
	}
	return d, func() { d.Close() }, nil
}
