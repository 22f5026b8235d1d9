// Package optim holds the optimiser the SRM experiments train with:
// stochastic gradient descent with momentum, computed exactly as
// torch.optim.SGD does so that a schedule tuned in PyTorch carries over,
// with parameter groups that exempt some parameters from weight decay.
package optim
