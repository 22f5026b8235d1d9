// Package cuda runs srmlab's kernels on an NVIDIA GPU from a pure-Go binary
// (CGO_ENABLED=0): it opens the CUDA driver (libcuda) and NVRTC at run time
// with purego, compiles the CUDA C++ sources embedded from kernels/*.cu for
// the device's own architecture on first use, and caches the CUBINs on disk
// under os.UserCacheDir()/srmlab/cuda.
//
// Open returns a Device: the GPU's primary context, a caching allocator for
// Buffers, and a lock under which every batch of CUDA calls runs on its
// caller's OS thread with the context made current there. Operations are
// built as Plans (kernel launches with packed arguments) and queued with
// Run or timed with Time; Markers time whatever was queued between them. SRM holds a Style-based Recalibration
// Module's parameters and plans its fused kernels: eval forward, training
// forward, and backward (see the maths at the top of kernels/srm.cu).
//
// Where there is no GPU or driver, Open fails with an error wrapping
// ErrUnavailable. SRMLAB_LIBCUDA and SRMLAB_LIBNVRTC name the libraries
// when the search (the usual system folders, /usr/local/cuda, CUDA_PATH,
// NVIDIA's Python wheels) does not find them.
//
// A Device is also a tensor.Device: tensors moved to it (tensor.To,
// nn.To, srm.Model.To) keep their values in Arrays, which go back to the
// allocator's cache when the garbage collector finds them unreachable, and
// package op runs each operation with the kernels below when its inputs
// live here. Small uploads (labels, tables) are queued from a page-locked
// ring rather than copied from Go memory, which would wait for the queue.
//
// Tail (Device.BlockTail) is the end of a residual block in training
// mode, out = ReLU(SRM(BN(x)) + short), or ReLU(BN(x) + short) for a plain
// block, as srm.cu's tail kernels: BN's batch statistics and the style of
// BN(x) follow from the plane moments of x, so BN(x) is never written, and
// the SRM costs no pass over the map beyond the plain block's. Forward
// moves 4 maps (x twice, short, out), backward 7 (the gradient past the
// ReLU, which is short's, is written once and read back for x's), where
// BatchNormTrain, the SRM and AddReLU as separate operations write BN(x)
// and the SRM's output and read them back, each way. Package op runs
// training-mode BatchNormAddReLU as the plain tail, package srm an
// official SRM block's end as the SRM tail.
//
// Check covers the fused SRM kernels and the block tail: each against a
// float64 reference, then timings against the device's copy bandwidth,
// every timed run after an untimed copy through twice the L2, and each
// kernel's share of the training passes (an event after every launch)
// with its registers and the blocks that fit an SM; with Variants, also
// under the former plane-kernel layout, in both plane orders: the table
// geometryFor's choices come from. SetPDL (or SRMLAB_PDL=1) launches
// SRM's and the block tails' kernels under programmatic dependent launch
// (sm_90: each may start while the one before it drains, then waits for
// it): faster for the stand-alone small-map kernels, slower for whole
// ResNet-50 steps on an H200, so off by default; cuda/candidates.sh times
// it. Two candidates, by-channel kernels (a training pass pair in one kernel, a
// block or a thread-block cluster per channel) and folded passes (the
// per-channel step inside the second pass), were timed on an H200 on
// 2026-11-27 and lost to the three kernels at most shapes; removed.
// `srmlab cuda-check` (package gpucheck) runs it, then every operation,
// module and whole model against the CPU engine, and times ResNet-50
// training steps; cuda/check.sh runs that on a GPU machine with the
// PyTorch comparison of cuda/bench_torch.py and the --device cuda
// commands. Without a GPU, the tests run the host logic against a
// stand-in driver, execute the kernel sources on the CPU (testdata/emu,
// needs g++; a fake cuBLAS stands in for the real one), which runs the
// engine's whole GPU path, a training run included, and compile them to
// sm_90 PTX with clang (ptxcheck.sh, needs clang 16 or newer) and to sm_90
// CUBINs with NVRTC itself, which needs no GPU (Debian's libnvrtc; the
// test fails if a kernel spills registers).
//
// Convolutions (ConvForward, ConvBackwardData, ConvBackwardFilter, on
// ConvGeom) and Gemm use cuBLAS and cuDNN, bound with purego like the
// driver and loaded on first use; both are optional. Convolutions run on
// cuDNN's legacy API, with descriptors and algorithms (chosen by
// cudnnFind, as PyTorch's cudnn.benchmark) cached per geometry, or, where
// cuDNN is missing, as im2col/col2im kernels (kernels/conv.cu) around
// cuBLAS GEMMs. SetTF32 lets cuDNN use TF32 tensor cores; cuBLAS stays
// strict FP32. ConvBackend says which path is taken. SRMLAB_LIBCUBLAS and
// SRMLAB_LIBCUDNN name the libraries when the search does not find them.
//
// The general layers' kernels (kernels/nn.cu) are Device methods that
// check their sizes and queue one plan each: elementwise maps (Fill, Copy,
// AddInto, ReLU, Sigmoid, Add and their gradients), gating (ScalePlanes),
// biases (AddBias, SumBias), BatchNorm (BatchNormTrain, BatchNormEval,
// BatchNormBackward, on a BNShape), CrossEntropy, SGDStep and
// FirstNonFinite. Their per-channel sums run in double, split over several
// blocks per channel when channels are few, and match the CPU engine
// (package op, optim) to 1e-5.
//
// Pooling (kernels/pool.cu) takes the CPU engine's own window tables
// (PoolSpan per output row and column, upsampling source indices), so both
// engines pool over the same windows with the same tie rules: AvgPool,
// MaxPool, Upsample and their backward passes, and SRM's building blocks
// StylePool, CFC and SubsamplePad (the option-A shortcut). The tables go to
// the device once and stay, found again by their contents; windows are
// reduced by a thread, a warp or a block by size, and the backward passes
// gather without atomics except MaxPoolBackward's.
//
// SEGate (kernels/se.cu) is Squeeze-and-Excitation's excitation, the
// bottleneck MLP and the sigmoid, as one kernel forward and two backward
// in place of a dozen launches on tiny matrices; GEGate (kernels/ge.cu) is
// GE-θ's BatchNorm and sigmoid, one kernel each way. Package srm uses them
// for SE and GE-θ modules on a GPU, so each of SE, GE and SRM touches the
// feature map only to gather and to scale it.
package cuda
