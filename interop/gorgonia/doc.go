// Package ggraph puts srmlab's recalibration modules (SRM, SE and the GE
// variants) and the layers around them into gorgonia.org/gorgonia
// expression graphs, with learnable nodes loaded from srmlab modules and
// written back to them, so that gorgonia users can train and run them with
// a TapeMachine and a gorgonia solver, and keep using srmlab checkpoints.
// (The package sits in interop/gorgonia; it is not named gorgonia so as not
// to shadow the package it adapts.)
//
// # Why srmlab has its own engine
//
// The SRM design card names gorgonia. Measured on Go 1.26 with gorgonia
// v0.9.18 and gorgonia.org/tensor v0.9.24, the latest releases (last
// commits 2023 and 2024), it is slow (one conv-BN-ReLU-recalibration-pool-
// linear training step, batch 64, 16 channels, 32x32, took 150-183 ms
// against 75-84 ms for a hand-written im2col+SGEMM step) and, in places,
// wrong. defects_test.go keeps each defect below under test and fails with
// "upstream fixed" when a release repairs one; the builders here avoid
// them all:
//
//   - Sum and Mean over axis 2 of a 4-D tensor read the wrong elements when
//     that axis has more than 2 elements (a (2,2,4,4) tensor holding 0..63
//     summed over axis 2 gives 56 where 88 is right). Only last axes are
//     reduced here: plane statistics over an (N, C, H·W) view, window
//     statistics over an (N, C, h·w, kh·kw) one.
//   - GlobalAveragePool2D has no gradient (Grad panics) and AveragePool2D's
//     gradient is wrong (it reuses max pooling's). SE's squeeze, SRM's
//     pooling and the GE gathers are last-axis means or per-window dot
//     products instead, and local GE gates are upsampled by products with
//     constant 0/1 matrices.
//   - BatchNorm's SetTraining(true), which every new TapeMachine calls,
//     resets the running statistics, and a nil scale or bias becomes a
//     random tensor of the input's full shape (gorgonia issue 408).
//     BatchNorms here are built from element-wise operations and keep
//     srmlab's running statistics.
//   - InverseSqrt's gradient divides by 2y³ where it should multiply by
//     y³/2; 1/Sqrt is used instead.
//   - The gradient of a broadcast operand comes back without the broadcast
//     axis, and Grad fails when that operand has another use. Vectors are
//     spread here by products with matrices of ones, which are exact.
//   - Reshape returns a view of its input that the TapeMachine does not
//     know about: an in-place operation on the view (element-wise
//     operations overwrite their first operand once nothing else reads it)
//     rewrites the input while other nodes still need it. Reshapes here
//     copy, and the caller's nodes are never the operand that is
//     overwritten.
//   - HeN panics for float32. Nothing here uses gorgonia's initialisers:
//     values come from srmlab modules.
//
// The same register reuse means that a node's Value() after a run may hold
// a later node's data: read results with gorgonia.Read, as the example
// does.
//
// # The pinned dependency
//
// Every binary linking gorgonia panics at start-up on current Go inside
// go4.org/unsafe/assume-no-moving-gc, which gorgonia's tensor package pulls
// in at a version that knows only older Go releases (gorgonia issue 523,
// tensor issue 128). srmlab's go.mod requires
// go4.org/unsafe/assume-no-moving-gc v0.0.0-20231121144256-b99613f794b6,
// which starts on current Go; this package imports it so that
// the requirement stays a direct one. Keep that pin when upgrading.
//
// # Use
//
// A Builder adds nodes to one graph in float32 or float64, in training
// form (batch statistics) or evaluation form (running statistics):
//
//	g := gorgonia.NewGraph()
//	b := ggraph.NewBuilder(g, tensor.Float64, true)
//	x := gorgonia.NewTensor(g, gt.Float64, 4, gorgonia.WithShape(8, 16, 8, 8), gorgonia.WithName("x"))
//	rclb, y, err := b.Recalibrator(x, "rclb", srm.Spec{Kind: "srm"}, rand.New(rand.NewPCG(1, 2)))
//	// or, for a module built or loaded by srmlab: y, err := b.Forward(x, "rclb", m)
//	...
//	gorgonia.Grad(loss, b.Learnables()...)
//	vm := gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(b.Learnables()...))
//	solver := gorgonia.NewVanillaSolver(gorgonia.WithLearnRate(0.1))
//	// per step: vm.RunAll(); solver.Step(gorgonia.NodesToValueGrads(b.Learnables())); vm.Reset()
//	b.WriteBack()                       // parameters into rclb's srmlab tensors
//	weights.Save(rclb, "rclb.safetensors", nil)
//
// Builder.Forward takes SRM with every pooling set, the biased option and
// the MLP ablation; SE; GE-θ, GE-θ⁻ and GE-θ⁺ with the global extent or a
// local one (gates upsampled nearest, as srmlab does); and the layers of a
// ResNet block and its head: nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear,
// average pooling, nn.Sequential.
// A gorgonia graph computes what the srmlab module's Forward computes, in
// training and in evaluation, forward and backward (the tests hold float64
// results to 1e-8 of srmlab's). A training graph also moves the srmlab
// BatchNorms' running statistics on every run, so a model trained in
// gorgonia evaluates in srmlab, and the other way round.
//
// ToDense, ToDenseAs and FromValue convert single tensors between srmlab
// and gorgonia. A checkpoint travels through the srmlab module: weights.Load
// into it, then Builder.Forward (or Builder.Reload for a graph already
// built); Builder.WriteBack, then weights.Save.
//
// The graphs are for gorgonia's TapeMachine, which differentiates
// symbolically; the copying reshape has no LispMachine (dual value)
// derivative. The srmlab layers without a gorgonia form, refused with an
// error, are grouped convolutions other than GE's non-overlapping depthwise
// gather (gorgonia's Conv2d has no groups), overlapping average pooling,
// max pooling and anything else Forward does not list.
package ggraph

import (
	// See "The pinned dependency" above.
	_ "go4.org/unsafe/assume-no-moving-gc"
)
