// Package gpucheck is the GPU acceptance run behind `srmlab cuda-check`,
// for a machine with an NVIDIA GPU: package cuda's own checks and timings
// of the fused SRM kernels, then every operation's GPU path against the
// CPU engine on random inputs (forward values, every input gradient and
// updated state), then whole models' logits, loss, gradients and one SGD
// step against the CPU in float64, then ResNet-50 training steps timed in
// the form cuda/bench_torch.py compares with PyTorch.
//
// Accuracy is measured as max |gpu − cpu| / max |cpu| per tensor, with the
// CPU in float64 and the GPU in float32 with TF32 off; the limits are the
// issue's: 1e-5 for single operations, 1e-4 for whole models (or four times
// the CPU engine's own float32 error on that quantity, where that is
// larger). Before a whole model's backward pass, the reference's ReLU
// masks are aligned with the GPU's where the two differ by no more than
// rounding (an element within rounding of the kink, see kinks.go), and a
// second float64 reference's with the CPU engine's, which its float32
// error is measured against; the alignment is reported per model ("ReLU
// masks") and a difference larger than rounding fails it. The convolutions
// take cudnnFind's fastest algorithm, or with Options.Deterministic only
// cuDNN's deterministic ones (a check of whether the remaining deviations
// come from summation orders that vary). Timings run with TF32
// convolutions on, as PyTorch's defaults have them.
package gpucheck
