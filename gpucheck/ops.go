package gpucheck

import (
	"math/rand/v2"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// OpLimit is the largest relative error a single operation may show.
const OpLimit = 1e-5

// input is one random input of a case.
type input struct {
	name  string
	shape []int
	grad  bool // requires a gradient
	pos   bool // positive values (variances)
}

func in(name string, grad bool, shape ...int) input {
	return input{name: name, shape: shape, grad: grad}
}

// opCase is one operation run the same way on both sides: run computes the
// output, and the state the operation updates, from inputs on either side.
type opCase struct {
	name   string
	inputs []input
	run    func(x []*tensor.Tensor) (out *tensor.Tensor, state []*tensor.Tensor)
}

func only(out *tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) { return out, nil }

// bn is a BatchNorm case: x, gamma, beta trained; running statistics as
// state.
func bn(name string, relu, training bool, shape ...int) opCase {
	c := shape[1]
	rv := in("running_var", false, c)
	rv.pos = true
	return opCase{name, []input{in("x", training, shape...), in("gamma", training, c), in("beta", training, c), in("running_mean", false, c), rv},
		func(x []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			f := op.BatchNorm
			if relu {
				f = op.BatchNormReLU
			}
			return f(x[0], x[1], x[2], x[3], x[4], training, 0.1, 1e-5), []*tensor.Tensor{x[3], x[4]}
		}}
}

// conv is a Conv2d case with a bias when bias is set.
func conv(name string, x, w []int, stride, pad, groups int, bias bool) opCase {
	ins := []input{in("x", true, x...), in("w", true, w...)}
	if bias {
		ins = append(ins, in("b", true, w[0]))
	}
	return opCase{name, ins, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
		var b *tensor.Tensor
		if bias {
			b = t[2]
		}
		return only(op.Conv2d(t[0], t[1], b, stride, pad, groups))
	}}
}

func unary(name string, f func(*tensor.Tensor) *tensor.Tensor, shape ...int) opCase {
	return opCase{name, []input{in("x", true, shape...)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
		return only(f(t[0]))
	}}
}

func stylePool(p srm.Pooling, biased bool) opCase {
	name := "StylePool " + p.String()
	if biased {
		name += " biased"
	}
	return unary(name, func(x *tensor.Tensor) *tensor.Tensor { return srm.StylePool(x, p, biased) }, 3, 5, 4, 6)
}

// opCases are the operations of the engine with a GPU path, on shapes
// that cover the kernels' branches: odd sizes, several blocks, strides,
// padding, groups, and a gradient accumulated from two uses.
func opCases() []opCase {
	labels := []int{3, 0, 6, 6, 1}
	return []opCase{
		unary("ReLU", op.ReLU, 2, 3, 5, 7),
		unary("Sigmoid", op.Sigmoid, 2, 3, 5, 7),
		{"Add", []input{in("a", true, 3, 4, 5), in("b", true, 3, 4, 5)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Add(t[0], t[1]))
		}},
		{"AddReLU", []input{in("a", true, 2, 3, 9, 9), in("b", true, 2, 3, 9, 9)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.AddReLU(t[0], t[1]))
		}},
		{"Mul gate", []input{in("x", true, 2, 3, 5, 7), in("g", true, 2, 3, 1, 1)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Mul(t[0], t[1]))
		}},
		{"Mul elementwise", []input{in("x", true, 4, 6), in("g", true, 4, 6)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Mul(t[0], t[1]))
		}},
		{"accumulate: ReLU(x)+Sigmoid(x)", []input{in("x", true, 2, 3, 4, 4)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Add(op.ReLU(t[0]), op.Sigmoid(t[0])))
		}},
		bn("BatchNorm train", false, true, 4, 3, 5, 5),
		bn("BatchNormReLU train", true, true, 2, 5, 7, 9),
		bn("BatchNorm train (N, C)", false, true, 8, 6),
		bn("BatchNorm eval", true, false, 3, 4, 5, 5),
		conv("Conv2d 3x3 s1 p1 bias", []int{2, 3, 7, 6}, []int{4, 3, 3, 3}, 1, 1, 1, true),
		conv("Conv2d 3x3 s2 p1", []int{2, 4, 9, 9}, []int{5, 4, 3, 3}, 2, 1, 1, false),
		conv("Conv2d 1x1 s1", []int{2, 6, 5, 5}, []int{8, 6, 1, 1}, 1, 0, 1, false),
		conv("Conv2d 1x1 s2", []int{2, 6, 6, 6}, []int{4, 6, 1, 1}, 2, 0, 1, false),
		conv("Conv2d 7x7 s2 p3 (stem)", []int{2, 3, 15, 15}, []int{4, 3, 7, 7}, 2, 3, 1, false),
		conv("Conv2d depthwise 3x3 s2", []int{2, 6, 8, 8}, []int{6, 1, 3, 3}, 2, 1, 6, false),
		conv("Conv2d 2 groups", []int{2, 4, 5, 5}, []int{6, 2, 3, 3}, 1, 1, 2, true),
		{"accumulate: Conv2d(x)+Conv2d(x)", []input{in("x", true, 2, 3, 5, 5), in("w", true, 3, 3, 3, 3)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Add(op.Conv2d(t[0], t[1], nil, 1, 1, 1), op.Conv2d(t[0], t[1], nil, 1, 1, 1)))
		}},
		{"Linear bias", []input{in("x", true, 5, 7), in("w", true, 3, 7), in("b", true, 3)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Linear(t[0], t[1], t[2]))
		}},
		{"Linear", []input{in("x", true, 4, 9), in("w", true, 6, 9)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(op.Linear(t[0], t[1], nil))
		}},
		unary("MaxPool2d 3 s2 p1", func(x *tensor.Tensor) *tensor.Tensor { return op.MaxPool2d(x, 3, 2, 1) }, 2, 3, 9, 8),
		unary("AvgPool2d 2 s2", func(x *tensor.Tensor) *tensor.Tensor { return op.AvgPool2d(x, 2, 2, 0) }, 2, 3, 8, 6),
		unary("AvgPool2d 3 s1 p1", func(x *tensor.Tensor) *tensor.Tensor { return op.AvgPool2d(x, 3, 1, 1) }, 1, 2, 5, 5),
		unary("GlobalAvgPool", op.GlobalAvgPool, 3, 4, 7, 7),
		unary("AdaptiveAvgPool2d 7->3", func(x *tensor.Tensor) *tensor.Tensor { return op.AdaptiveAvgPool2d(x, 3, 3) }, 2, 3, 7, 7),
		unary("UpsampleNearest 3->7", func(x *tensor.Tensor) *tensor.Tensor { return op.UpsampleNearest(x, 7, 7) }, 2, 3, 3, 3),
		unary("Reshape", func(x *tensor.Tensor) *tensor.Tensor { return op.Sigmoid(op.Flatten(x)) }, 2, 3, 2, 2),
		{"CrossEntropy", []input{in("logits", true, 5, 7)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			loss, err := op.CrossEntropy(t[0], labels)
			if err != nil {
				panic(err)
			}
			return only(loss)
		}},
		stylePool(srm.PoolAvg|srm.PoolStd, false),
		stylePool(srm.PoolAvg|srm.PoolStd, true),
		stylePool(srm.PoolAvg|srm.PoolMax, false),
		stylePool(srm.PoolStd|srm.PoolMax, false),
		stylePool(srm.PoolAvg|srm.PoolStd|srm.PoolMax, false),
		{"CFC bias", []input{in("t", true, 4, 6, 2), in("w", true, 6, 2), in("b", true, 6)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(srm.CFC(t[0], t[1], t[2]))
		}},
		{"CFC global gather (GE)", []input{in("x", true, 3, 5, 3, 3), in("w", true, 5, 1, 3, 3)}, func(t []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
			return only(srm.CFC(t[0], t[1], nil))
		}},
	}
}

// checkOps runs every case on the CPU in float64 and on d in float32.
func checkOps(d *cuda.Device, seed uint64, filter func(string) bool) []Result {
	var out []Result
	for i, c := range opCases() {
		if filter != nil && !filter(c.name) {
			continue
		}
		out = append(out, checkOp(d, c, rand.New(rand.NewPCG(seed, uint64(i))))...)
	}
	return out
}
