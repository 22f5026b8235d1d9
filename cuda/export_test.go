package cuda

import "testing"

// OpenEmulated opens the stand-in driver with the kernel emulator and the
// fake cuBLAS (no cuDNN, so convolutions take im2col + GEMM), for tests
// outside the package that run the engine's GPU paths on the CPU.
func OpenEmulated(t *testing.T) *Device {
	emu := emulator(t)
	d, drv, _ := openFake(t)
	drv.emulator = emu
	useFakeLibs(d, newFakeBLAS(drv), nil)
	return d
}
