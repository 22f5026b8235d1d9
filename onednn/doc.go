// Package onednn runs srmlab's CPU convolutions through Intel's oneDNN, the
// library PyTorch's CPU convolutions use, found at run time: Debian's
// libdnnl2 (oneDNN 2.x) is opened with purego, so srmlab needs no cgo and no
// build tags, and when no library can be opened op.Conv2d keeps its own
// im2col + BLAS path. Available says which.
//
// oneDNN's fast kernels (JIT-generated for AVX2, AVX-512 and AMX) read and
// write channel-blocked layouts (nChw16c: sixteen channels interleaved), so
// each call reorders srmlab's NCHW tensors into the layout the kernel chose
// and its result back, as PyTorch does for NCHW tensors. Gradients are added
// into their buffers by the reorders themselves (a sum post-op), which
// saves a pass over each gradient.
//
// Making a primitive (choosing and JIT-compiling a kernel) costs far more
// than running it, so each geometry's primitives, and each layout pair's
// reorder, are kept for the next call: the 256 and 1024 used most
// recently, since a geometry includes the batch size and a long session
// would otherwise keep every one it made.
//
// oneDNN parallelises with OpenMP. All calls run on one OS thread (OpenMP
// keeps a thread team per calling thread), with as many OpenMP threads as
// GOMAXPROCS, and idle OpenMP threads sleep instead of spinning
// (OMP_WAIT_POLICY=passive unless the environment says otherwise), so they
// leave the cores to srmlab's own goroutines between calls. oneDNN's
// results for a fixed thread count are the same bits run to run.
//
// SRMLAB_ONEDNN selects explicitly: "off" keeps every convolution on
// srmlab's own path; a path names the library to open.
package onednn
