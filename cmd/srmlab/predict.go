package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/train"
	"github.com/srmlab/srmlab/weights"
)

func init() {
	register("predict", "logits of a trained model for a .npy batch of images", runPredict)
}

// runPredict loads a model's weights (safetensors or a torch.save
// state_dict), runs it in evaluation mode over a float32 (N, 3, H, W) .npy
// batch and writes the float32 (N, K) logits as .npy. Images are fed in
// chunks of --batch to bound memory; in evaluation mode BatchNorm uses its
// running statistics, so chunking does not change the logits.
func runPredict(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	model := fs.String("model", "", "model name, e.g. srm-resnet50 or resnet20 (see srmlab params)")
	weightsPath := fs.String("weights", "", "weights: safetensors, or a torch.save state_dict or checkpoint")
	input := fs.String("input", "", "input images: float32 or float64 .npy of shape (N, 3, H, W), already normalised")
	out := fs.String("out", "", "output .npy for the float32 (N, K) logits")
	classes := fs.Int("classes", 0, "number of classes K (default 1000 for ImageNet, 10 for CIFAR models)")
	shortcut := fs.String("shortcut", "", "shortcut option of CIFAR models the weights were trained with, A or B (default A)")
	batch := fs.Int("batch", 32, "images per forward pass")
	device := deviceFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab predict --model NAME --weights FILE --input X.npy --out Y.npy [--classes K] [--shortcut A|B] [--batch B] [--device cpu|cuda]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *model == "" || *weightsPath == "" || *input == "" || *out == "":
		fs.Usage()
		return fmt.Errorf("--model, --weights, --input and --out are required")
	case *batch < 1:
		return fmt.Errorf("--batch %d: want at least 1", *batch)
	}

	x, err := weights.ReadNpy(*input)
	if err != nil {
		return err
	}
	if x.Rank() != 4 || x.Dim(1) != 3 || x.Dim(0) < 1 {
		return fmt.Errorf("%s: shape %v, want a batch of images (N, 3, H, W)", *input, x.Shape())
	}
	n, h, w := x.Dim(0), x.Dim(2), x.Dim(3)
	o := srm.Options{Classes: *classes, Shortcut: *shortcut}
	if h == w {
		// GE-θ's gather kernels span the whole feature map, so their
		// shapes, and the weights', follow the input size.
		o.InputSize = h
	}
	m, err := train.LoadModel(*model, o, *weightsPath)
	if err != nil {
		return err
	}

	release, err := placeModel(m, *device)
	if err != nil {
		return err
	}
	defer release()
	dev := m.Device()

	per := 3 * h * w
	data := x.F32()
	var logits *tensor.Tensor
	for i := 0; i < n; i += *batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := min(i+*batch, n)
		xb, err := tensor.FromFloat32(data[i*per:j*per], j-i, 3, h, w).To(dev)
		if err != nil {
			return err
		}
		y, err := m.Forward(xb)
		if err != nil {
			return err
		}
		if logits == nil {
			logits = tensor.Zeros(n, y.Dim(1))
		}
		k := y.Dim(1)
		copy(logits.F32()[i*k:j*k], y.Float32s())
	}
	return weights.WriteNpy(*out, logits)
}
