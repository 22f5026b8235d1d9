package srm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// Options sets what a model name leaves open. The zero value gives the
// standard model: ImageNet models for 1000 classes at 224 px with
// projection shortcuts, CIFAR models for 10 classes at 32 px with option A
// shortcuts.
type Options struct {
	// Classes is the number of outputs (0: 1000 for ImageNet, 10 for CIFAR).
	Classes int
	// InputSize is the side of the square input the model is built for
	// (0: 224 for ImageNet, 32 for CIFAR). It sizes GE-θ's global kernels
	// and the MAC count; other models take other sizes as well.
	InputSize int
	// Shortcut is "A" (parameter-free: subsampling and zero channels, He et
	// al.'s CIFAR choice) or "B" (1x1 convolution and BN) for the blocks
	// that change shape; "" picks A for CIFAR and B for ImageNet models,
	// which only have B.
	Shortcut string
	// StrideIn1x1 builds the ResNet v1 layout of the Caffe models, with a
	// Bottleneck's stride in its first 1x1 convolution instead of its 3x3
	// (torchvision's v1.5, the default). It changes MACs, not parameters,
	// and does nothing for BasicBlock models.
	StrideIn1x1 bool
	// Seed seeds the initialisation; equal seeds give equal weights.
	Seed uint64
}

// Model is a ResNet of the zoo, plain or with a recalibration module in
// every residual block. Its variables carry torchvision's state_dict names
// with the official code's "rclb" for the module.
type Model struct {
	// Name is the canonical model name (see ParseName).
	Name string
	// Spec is the recalibration module; its Kind is "" for a plain ResNet.
	Spec Spec
	// Depth is the ResNet depth, 18 to 152 for ImageNet, 20 to 110 for CIFAR.
	Depth int
	// Options are the options the model was built with, defaults filled in.
	Options Options

	net   *resnet
	sites []Site
}

// Site is one recalibration module of a model and its state_dict prefix.
type Site struct {
	Name   string // e.g. "layer2.3.rclb"
	Module Recalibrator
}

// ImageNetDepths and CIFARDepths list the ResNet depths of the zoo.
var (
	// ImageNetDepths are torchvision's ResNets.
	ImageNetDepths = []int{18, 34, 50, 101, 152}
	// CIFARDepths are He et al.'s CIFAR ResNets, depth 6n+2.
	CIFARDepths = []int{20, 32, 44, 56, 110}
)

// ModuleKinds lists the recalibration kinds of the zoo; "" is none.
var ModuleKinds = []string{"", "se", "ge", "ge-", "ge+", "srm"}

// Names lists the zoo: every depth with every module kind in its default
// form. ParseName accepts more (module options).
func Names() []string {
	var names []string
	for _, d := range append(slices.Clone(ImageNetDepths), CIFARDepths...) {
		for _, k := range ModuleKinds {
			names = append(names, joinName(k, d))
		}
	}
	return names
}

func joinName(spec string, depth int) string {
	base := "resnet" + strconv.Itoa(depth)
	if spec == "" {
		return base
	}
	return spec + "-" + base
}

// ParseName splits a model name, [spec "-"] "resnet" depth, into its
// module spec (Kind "" when there is none) and depth: "resnet50",
// "srm-resnet50", "se:r8-resnet20", "ge--resnet56" (GE-θ⁻),
// "srm:avg+max:biased-resnet20".
func ParseName(name string) (Spec, int, error) {
	i := strings.LastIndex(name, "resnet")
	if i < 0 {
		return Spec{}, 0, fmt.Errorf("srm: model name %q does not end in resnet<depth> (see srm.Names)", name)
	}
	depth, err := strconv.Atoi(name[i+len("resnet"):])
	if _, ok := archs[depth]; err != nil || !ok {
		return Spec{}, 0, fmt.Errorf("srm: unknown ResNet %q in %q (depths %v for ImageNet, %v for CIFAR)", name[i:], name, ImageNetDepths, CIFARDepths)
	}
	if i == 0 {
		return Spec{}, depth, nil
	}
	if name[i-1] != '-' {
		return Spec{}, 0, fmt.Errorf("srm: model name %q: want <module>-resnet<depth>", name)
	}
	s, err := ParseSpec(name[:i-1])
	return s, depth, err
}

// NewModel builds the named model (see ParseName and Names) with weights
// initialised as the official code does, from o.Seed.
func NewModel(name string, o Options) (*Model, error) {
	spec, depth, err := ParseName(name)
	if err != nil {
		return nil, err
	}
	a := archs[depth]
	if o.Classes == 0 {
		o.Classes = 1000
		if a.cifar {
			o.Classes = 10
		}
	}
	if o.InputSize == 0 {
		o.InputSize = 224
		if a.cifar {
			o.InputSize = 32
		}
	}
	if o.Shortcut == "" {
		o.Shortcut = "B"
		if a.cifar {
			o.Shortcut = "A"
		}
	}
	switch {
	case o.Classes < 1 || o.InputSize < 1:
		return nil, fmt.Errorf("srm: %s needs at least one class and a positive input size, got %d and %d", name, o.Classes, o.InputSize)
	case o.Shortcut != "A" && o.Shortcut != "B":
		return nil, fmt.Errorf("srm: shortcut option %q (want A or B)", o.Shortcut)
	case o.Shortcut == "A" && !a.cifar:
		return nil, fmt.Errorf("srm: %s: ImageNet ResNets use projection shortcuts (B), not A", name)
	}
	b := &builder{
		r:         rand.New(rand.NewPCG(o.Seed, 0x5253_4d6c_6162)),
		spec:      spec,
		shortcutA: o.Shortcut == "A",
	}
	m := &Model{Spec: spec, Depth: depth, Options: o}
	m.Name = joinName(spec.String(), depth)
	if m.net, err = b.net(a, o.Classes, o.InputSize); err != nil {
		return nil, fmt.Errorf("srm: %s at %d px: %w", m.Name, o.InputSize, err)
	}
	if o.StrideIn1x1 {
		m.net = m.net.strideIn1x1()
	}
	for i, l := range m.net.layers {
		for j, blk := range l {
			if r := blk.(*block).rclb; r != nil {
				m.sites = append(m.sites, Site{Name: fmt.Sprintf("layer%d.%d.rclb", i+1, j), Module: r})
			}
		}
	}
	m.Train()
	return m, nil
}

// Forward computes the logits (N, Classes) for images x (N, 3, H, W) of
// the model's element type. It checks the input, and every layer's demands
// on its size, before running any layer, so a bad input changes no
// running statistics, and reports misuse as an error.
func (m *Model) Forward(x *tensor.Tensor) (out *tensor.Tensor, err error) {
	if x == nil || x.Rank() != 4 || x.Dim(0) < 1 {
		return nil, fmt.Errorf("srm: %s takes a batch of images (N, 3, H, W), got %v", m.Name, x)
	}
	if dt := m.net.conv1.Weight.DType(); x.DType() != dt {
		return nil, fmt.Errorf("srm: %s is %v and got %v images", m.Name, dt, x.DType())
	}
	if dev := m.Device(); x.Device() != dev {
		return nil, fmt.Errorf("srm: %s is on %s and got images on %s (move them with x.To(m.Device()))", m.Name, place(dev), place(x.Device()))
	}
	if _, _, err := m.net.trace(dims{x.Dim(1), x.Dim(2), x.Dim(3)}); err != nil {
		return nil, fmt.Errorf("srm: %s on %v: %w", m.Name, x.Shape(), err)
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			var se *tensor.ShapeError
			var de *tensor.DeviceError
			if !ok || !(errors.As(e, &se) || errors.As(e, &de)) {
				panic(r)
			}
			out, err = nil, fmt.Errorf("srm: %s on %v: %w", m.Name, x.Shape(), e)
		}
	}()
	return m.net.Forward(x), nil
}

// To moves the model's parameters and buffers to dev, a GPU from
// cuda.Open (nil: back to the host), in place: optimisers and references
// to the parameters stay valid. Inputs must then live on the same device.
func (m *Model) To(dev tensor.Device) error { return nn.To(m.net, dev) }

// Device returns where the model's parameters live, nil for the host.
func (m *Model) Device() tensor.Device { return m.net.conv1.Weight.Device() }

func place(d tensor.Device) string {
	if d == nil {
		return "the host"
	}
	return d.String()
}

// Module returns the network as an nn.Module for nn.Cast, optimisers and
// checkpoints; its Forward panics on misuse where Model.Forward returns an
// error.
func (m *Model) Module() nn.Module { return m.net }

// Vars lists the model's parameters and buffers with their state_dict
// names.
func (m *Model) Vars() []nn.Var { return m.net.Vars() }

// SetTraining switches between training and evaluation behaviour.
func (m *Model) SetTraining(on bool) { m.net.SetTraining(on) }

// Train selects training behaviour (BatchNorm batch statistics), the state
// a new model starts in, as in PyTorch.
func (m *Model) Train() { m.SetTraining(true) }

// Eval selects evaluation behaviour (BatchNorm running statistics).
func (m *Model) Eval() { m.SetTraining(false) }

// Recalibrators lists the model's modules in forward order, one per
// residual block; none for a plain ResNet.
func (m *Model) Recalibrators() []Site { return m.sites }

// Params returns the number of trainable parameters.
func (m *Model) Params() int { return nn.CountParams(m.net) }

// MACs returns the multiply-accumulates of one forward of one image at
// the model's input size, counted as the package documentation says.
func (m *Model) MACs() float64 { return macs(m.net, m.Options.InputSize) }

// macs sizes n for square inputs of the given side, which NewModel has
// checked it takes.
func macs(n *resnet, side int) float64 {
	_, macs, err := n.trace(dims{3, side, side})
	if err != nil {
		panic(err)
	}
	return macs
}

// Size is a model's cost.
type Size struct {
	// Params counts trainable parameters (not BatchNorm running statistics).
	Params int
	// MACs counts multiply-accumulates of one image (see the package
	// documentation), in the layout built.
	MACs float64
	// CaffeMACs is MACs for the Caffe (ResNet v1) layout of an ImageNet
	// model, the convention of the SRM paper's GFLOPs; equal to MACs for
	// BasicBlock models, 0 for CIFAR models, which have no Caffe version.
	CaffeMACs float64
}

// Count sizes the named model without running it: it builds the model
// and walks its layers, and those of its Caffe-layout twin for a
// Bottleneck ImageNet model.
func Count(name string, o Options) (Size, error) {
	m, err := NewModel(name, o)
	if err != nil {
		return Size{}, err
	}
	s := Size{Params: m.Params(), MACs: m.MACs()}
	if !archs[m.Depth].cifar {
		s.CaffeMACs = macs(m.net.strideIn1x1(), m.Options.InputSize)
	}
	return s, nil
}
