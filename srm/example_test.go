package srm_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

func ExampleNewModel() {
	m, err := srm.NewModel("srm-resnet20", srm.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	x := tensor.Zeros(2, 3, 32, 32) // a batch of two CIFAR images
	logits, err := m.Forward(x)
	if err != nil {
		log.Fatal(err)
	}
	site := m.Recalibrators()[0]
	fmt.Println(m.Name, m.Params(), "parameters; logits", logits.Shape())
	fmt.Println(len(m.Recalibrators()), "modules; gates of", site.Name, site.Module.Gates().Shape())

	// Bad input is an error, not a panic.
	_, err = m.Forward(tensor.Zeros(2, 1, 32, 32))
	fmt.Println(err)
	// Output:
	// srm-resnet20 271066 parameters; logits [2 10]
	// 9 modules; gates of layer1.0.rclb [2 16 1 1]
	// srm: srm-resnet20 on [2 1 32 32]: srm: want 3-channel images of at least 1x1 pixels, got 1 channels of 32x32
}

func ExampleCount() {
	for _, name := range []string{"resnet50", "srm-resnet50"} {
		s, err := srm.Count(name, srm.Options{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-13s %d parameters, %.3f GMACs (Caffe layout %.3f)\n", name, s.Params, s.MACs/1e9, s.CaffeMACs/1e9)
	}
	// Output:
	// resnet50      25557032 parameters, 4.089 GMACs (Caffe layout 3.858)
	// srm-resnet50  25617448 parameters, 4.111 GMACs (Caffe layout 3.880)
}

func ExampleNewRecalibrator() {
	r := rand.New(rand.NewPCG(1, 2))
	m, err := srm.NewRecalibrator("srm", 8, 0, r)
	if err != nil {
		log.Fatal(err)
	}
	x := tensor.Zeros(4, 8, 7, 7)
	x.FillNormal(r, 0, 1)
	y := m.Forward(x)
	// The cfc starts at zero, so every gate is sigmoid(0) and SRM halves
	// its input.
	fmt.Println(y.Shape(), m.Gates().At(0), y.At(5)/x.At(5))
	// Output:
	// [4 8 7 7] 0.5 0.5
}

func ExampleParseName() {
	for _, name := range []string{"resnet50", "ge--resnet56", "srm:max+avg:biased-resnet20", "se:r8-resnet110"} {
		spec, depth, err := srm.ParseName(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: depth %d, module %q (kind %q)\n", name, depth, spec, spec.Kind)
	}
	// Output:
	// resnet50: depth 50, module "" (kind "")
	// ge--resnet56: depth 56, module "ge-" (kind "ge-")
	// srm:max+avg:biased-resnet20: depth 20, module "srm:avg+max:biased" (kind "srm")
	// se:r8-resnet110: depth 110, module "se:r8" (kind "se")
}
