// Package op holds srmlab's differentiable operations on NCHW tensors:
// convolution, linear maps, batch normalisation, activations, pooling,
// upsampling, reshaping and the softmax cross-entropy loss.
//
// Every operation works in float32 and float64 (inputs must share one type),
// records its backward pass with tensor.Record, and has a finite-difference
// test in float64 beside it. Shape misuse panics with a *tensor.ShapeError;
// CrossEntropy, which reads labels that come from data, returns an error.
package op
