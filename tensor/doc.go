// Package tensor is srmlab's n-dimensional array with reverse-mode automatic
// differentiation.
//
// A Tensor holds float32 (the working type) or float64 (the type gradient
// checks run in) data in row-major order; images are NCHW. Operations live in
// package nn: each computes its result and, when any input needs a gradient,
// records with Record how to push the result's gradient back to its inputs.
// Backward walks that record once, in reverse topological order, as in
// micrograd, and then drops it, so a graph is differentiated once.
//
// Tensors may live on a Device (a GPU, from package cuda): To and MoveTo
// move values, and every operation runs where its inputs are. Device
// failures panic with a *DeviceError, recovered where ShapeErrors are.
//
// Shape mismatches are programming errors and panic with a *ShapeError, as
// gonum's mat does; functions that read user data return errors instead.
package tensor
