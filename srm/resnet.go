package srm

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// arch describes one ResNet of the zoo.
type arch struct {
	blocks     []int // residual blocks per stage
	bottleneck bool  // 1x1-3x3-1x1 blocks with expansion 4, else two 3x3
	cifar      bool  // He et al.'s CIFAR ResNet: 16/32/64 channels, no max pool
}

var archs = map[int]arch{
	18:  {blocks: []int{2, 2, 2, 2}},
	34:  {blocks: []int{3, 4, 6, 3}},
	50:  {blocks: []int{3, 4, 6, 3}, bottleneck: true},
	101: {blocks: []int{3, 4, 23, 3}, bottleneck: true},
	152: {blocks: []int{3, 8, 36, 3}, bottleneck: true},
	20:  {blocks: []int{3, 3, 3}, cifar: true},
	32:  {blocks: []int{5, 5, 5}, cifar: true},
	44:  {blocks: []int{7, 7, 7}, cifar: true},
	56:  {blocks: []int{9, 9, 9}, cifar: true},
	110: {blocks: []int{18, 18, 18}, cifar: true},
}

// resnet is the network: torchvision's ResNet (conv1, bn1, max pool,
// layer1..4, average pool, fc) or He et al.'s CIFAR ResNet (conv1, bn1,
// layer1..3, average pool, fc), with an optional recalibration module in
// every block.
type resnet struct {
	conv1   *nn.Conv2d
	bn1     *nn.BatchNorm2d
	maxPool bool
	layers  []nn.Sequential // of *block
	fc      *nn.Linear
}

// block is a residual block: conv-BN pairs with ReLU between them (two 3x3
// in BasicBlock, 1x1-3x3-1x1 in Bottleneck), the recalibration module after
// the last BN, then the shortcut addition and the final ReLU, the placement
// of the SRM, SE and GE papers.
type block struct {
	convs []*nn.Conv2d
	bns   []*nn.BatchNorm2d
	rclb  Recalibrator // nil in plain ResNets
	// down is the "downsample" shortcut: a 1x1 convolution and BN
	// (option B), the parameter-free shortcutA, or nil for the identity.
	down nn.Module
}

// builder carries what building a network needs besides the architecture.
type builder struct {
	r         *rand.Rand
	spec      Spec // Kind "" builds no modules
	shortcutA bool
}

func (b *builder) net(a arch, classes, size int) (*resnet, error) {
	n := &resnet{maxPool: !a.cifar}
	width := 64
	if a.cifar {
		width = 16
		n.conv1 = nn.NewConv2d(b.r, 3, width, 3, 1, 1, 1, false)
	} else {
		n.conv1 = nn.NewConv2d(b.r, 3, width, 7, 2, 3, 1, false)
	}
	n.bn1 = nn.NewBatchNorm2d(width)
	d, _ := n.stem(dims{3, size, size})
	for i, count := range a.blocks {
		stride := 2
		if i == 0 {
			stride = 1
		}
		var layer nn.Sequential
		for j := 0; j < count; j++ {
			blk, err := b.block(a, d, width<<i, stride)
			if err == nil {
				d, _, err = blk.trace(d)
			}
			if err != nil {
				return nil, fmt.Errorf("layer%d.%d: %w", i+1, j, err)
			}
			layer = append(layer, blk)
			stride = 1
		}
		n.layers = append(n.layers, layer)
	}
	n.fc = nn.NewLinear(b.r, d.c, classes, true)
	return n, nil
}

// block builds one residual block for inputs of size d; d.h sizes a
// global GE kernel.
func (b *builder) block(a arch, d dims, planes, stride int) (*block, error) {
	blk, in := &block{}, d.c
	out := planes
	if a.bottleneck {
		out = 4 * planes
		blk.add(b.r, in, planes, 1, 1, 0)
		blk.add(b.r, planes, planes, 3, stride, 1)
		blk.add(b.r, planes, out, 1, 1, 0)
	} else {
		blk.add(b.r, in, out, 3, stride, 1)
		blk.add(b.r, out, out, 3, 1, 1)
	}
	if stride != 1 || in != out {
		if b.shortcutA {
			blk.down = shortcutA{stride: stride, out: out}
		} else {
			blk.down = nn.Sequential{nn.NewConv2d(b.r, in, out, 1, stride, 0, 1, false), nn.NewBatchNorm2d(out)}
		}
	}
	if b.spec.Kind != "" {
		o, _, err := blk.branch(d)
		if err == nil {
			blk.rclb, err = b.spec.build(out, o.h, b.r)
		}
		if err != nil {
			return nil, err
		}
	}
	return blk, nil
}

// strideIn1x1 returns a twin of n in the ResNet v1 layout of the Caffe
// models: each Bottleneck's stride moves from its 3x3 convolution to its
// first 1x1. The twin shares n's parameters, since the layouts differ in
// geometry only, so that Count sizes it without building a second network.
func (n *resnet) strideIn1x1() *resnet {
	twin := *n
	twin.layers = make([]nn.Sequential, len(n.layers))
	for i, l := range n.layers {
		for _, m := range l {
			blk := *m.(*block)
			if len(blk.convs) == 3 {
				first, spatial := *blk.convs[0], *blk.convs[1]
				// One of the two strides is 1, so the product is the
				// block's stride in either layout.
				first.Stride, spatial.Stride = first.Stride*spatial.Stride, 1
				blk.convs = []*nn.Conv2d{&first, &spatial, blk.convs[2]}
			}
			twin.layers[i] = append(twin.layers[i], &blk)
		}
	}
	return &twin
}

func (blk *block) add(r *rand.Rand, in, out, k, stride, pad int) {
	blk.convs = append(blk.convs, nn.NewConv2d(r, in, out, k, stride, pad, 1, false))
	blk.bns = append(blk.bns, nn.NewBatchNorm2d(out))
}

func (blk *block) Forward(x *tensor.Tensor) *tensor.Tensor {
	short := x
	if blk.down != nil {
		short = blk.down.Forward(x)
	}
	out, last := x, len(blk.convs)-1
	for i, c := range blk.convs[:last] {
		out = nn.ConvBN(c, blk.bns[i], out, true)
	}
	if blk.rclb == nil {
		return nn.ConvBNAddReLU(blk.convs[last], blk.bns[last], out, short)
	}
	if m := blk.fusedTail(); m != nil {
		return m.tail(blk.convs[last].Forward(out), blk.bns[last], short)
	}
	out = nn.ConvBN(blk.convs[last], blk.bns[last], out, false)
	if g, ok := blk.rclb.(channelGater); ok {
		if s, ok := g.channelGates(out); ok {
			return op.ScaleAddReLU(out, s, short)
		}
	}
	return op.AddReLU(blk.rclb.Forward(out), short)
}

// fusedTail returns the block's SRM when its last BatchNorm, the SRM, the
// shortcut addition and the ReLU can run as one training-mode operation
// (SRM.tail): the official SRM, with both BatchNorms
// training; nil otherwise.
func (blk *block) fusedTail() *SRM {
	m, ok := blk.rclb.(*SRM)
	if !ok || !m.fused() || !m.BN.Training || !blk.bns[len(blk.bns)-1].Training {
		return nil
	}
	return m
}

// Vars follows the registration order of the official code: conv1, bn1,
// conv2, bn2(, conv3, bn3), downsample, rclb.
func (blk *block) Vars() []nn.Var {
	var vs []nn.Var
	for i, c := range blk.convs {
		k := strconv.Itoa(i + 1)
		vs = append(vs, nn.Prefixed("conv"+k, c.Vars())...)
		vs = append(vs, nn.Prefixed("bn"+k, blk.bns[i].Vars())...)
	}
	if blk.down != nil {
		vs = append(vs, nn.Prefixed("downsample", blk.down.Vars())...)
	}
	if blk.rclb != nil {
		vs = append(vs, nn.Prefixed("rclb", blk.rclb.Vars())...)
	}
	return vs
}

func (blk *block) SetTraining(on bool) {
	for i := range blk.convs {
		blk.convs[i].SetTraining(on)
		blk.bns[i].SetTraining(on)
	}
	if blk.down != nil {
		blk.down.SetTraining(on)
	}
	if blk.rclb != nil {
		blk.rclb.SetTraining(on)
	}
}

func (n *resnet) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = nn.ConvBN(n.conv1, n.bn1, x, true)
	if n.maxPool {
		x = op.MaxPool2d(x, 3, 2, 1)
	}
	for _, l := range n.layers {
		x = l.Forward(x)
	}
	return n.fc.Forward(op.Flatten(op.GlobalAvgPool(x)))
}

// Vars uses torchvision's names: conv1, bn1, layer1.., fc.
func (n *resnet) Vars() []nn.Var {
	vs := append(nn.Prefixed("conv1", n.conv1.Vars()), nn.Prefixed("bn1", n.bn1.Vars())...)
	for i, l := range n.layers {
		vs = append(vs, nn.Prefixed("layer"+strconv.Itoa(i+1), l.Vars())...)
	}
	return append(vs, nn.Prefixed("fc", n.fc.Vars())...)
}

func (n *resnet) SetTraining(on bool) {
	n.conv1.SetTraining(on)
	n.bn1.SetTraining(on)
	for _, l := range n.layers {
		l.SetTraining(on)
	}
	n.fc.SetTraining(on)
}
