package ggraph_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	ggraph "github.com/srmlab/srmlab/interop/gorgonia"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// An SRM-ResNet basic block (conv-BN-ReLU-conv-BN-SRM, identity shortcut,
// ReLU) and a linear head, made of srmlab layers, trained for a few steps
// by gorgonia's TapeMachine and momentum solver; the trained parameters
// then go back into the srmlab layers, ready for weights.Save.
func Example() {
	const n, c, size, classes, steps = 8, 4, 6, 2, 8
	r := rand.New(rand.NewPCG(1, 2))
	conv1 := nn.NewConv2d(r, c, c, 3, 1, 1, 1, false)
	bn1 := nn.NewBatchNorm2d(c)
	conv2 := nn.NewConv2d(r, c, c, 3, 1, 1, 1, false)
	bn2 := nn.NewBatchNorm2d(c)
	rclb, err := srm.NewRecalibrator("srm", c, size, r)
	if err != nil {
		log.Fatal(err)
	}
	head := nn.Sequential{nn.NewAdaptiveAvgPool2d(1, 1), nn.Flatten{}, nn.NewLinear(r, c, classes, true)}
	layers := []struct {
		name string
		m    nn.Module
	}{{"conv1", conv1}, {"bn1", bn1}, {"relu", nn.ReLU{}}, {"conv2", conv2}, {"bn2", bn2}, {"rclb", rclb}}

	// A batch of two classes told apart by channel 0's mean (+1 or −1),
	// with one-hot targets.
	x, target := tensor.New(tensor.Float64, n, c, size, size), tensor.New(tensor.Float64, n, classes)
	x.FillNormal(r, 0, 1)
	for i := range n {
		label := i % 2
		for j := range size * size {
			k := i*c*size*size + j
			x.Set(k, x.At(k)+float64(2*label-1))
		}
		target.Set(i*classes+label, 1)
	}

	g := G.NewGraph()
	b := ggraph.NewBuilder(g, tensor.Float64, true)
	xn := G.NewTensor(g, G.Float64, 4, G.WithShape(n, c, size, size), G.WithName("x"), G.WithValue(ggraph.ToDense(x)))
	y := xn
	for _, l := range layers {
		if y, err = b.Forward(y, "layer1.0."+l.name, l.m); err != nil {
			log.Fatal(err)
		}
	}
	y = G.Must(G.Rectify(G.Must(G.Add(y, xn))))
	logits, err := b.Forward(y, "head", head)
	if err != nil {
		log.Fatal(err)
	}
	diff := G.Must(G.Sub(logits, G.NewConstant(ggraph.ToDense(target))))
	loss := G.Must(G.Mean(G.Must(G.Square(diff))))
	if _, err := G.Grad(loss, b.Learnables()...); err != nil {
		log.Fatal(err)
	}
	// Read, not loss.Value(): the machine may reuse a node's memory later
	// in the run.
	var lossVal G.Value
	G.Read(loss, &lossVal)

	vm := G.NewTapeMachine(g, G.BindDualValues(b.Learnables()...))
	defer vm.Close()
	solver := G.NewMomentum(G.WithLearnRate(0.1), G.WithMomentum(0.9))
	var losses []float64
	for range steps {
		if err := vm.RunAll(); err != nil {
			log.Fatal(err)
		}
		losses = append(losses, float64(*lossVal.(*G.F64)))
		if err := solver.Step(G.NodesToValueGrads(b.Learnables())); err != nil {
			log.Fatal(err)
		}
		vm.Reset()
	}
	if err := b.WriteBack(); err != nil {
		log.Fatal(err)
	}
	cfc := rclb.(*srm.SRM).CFC
	fmt.Println("learnables:", len(b.Learnables()))
	fmt.Println("loss decreased:", losses[steps-1] < losses[0])
	fmt.Println("SRM's cfc trained (was zero):", cfc.At(0) != 0)
	fmt.Println("SRM's BatchNorm counted batches:", rclb.(*srm.SRM).BN.NumBatchesTracked.Item())
	// Output:
	// learnables: 11
	// loss decreased: true
	// SRM's cfc trained (was zero): true
	// SRM's BatchNorm counted batches: 8
}
