package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
)

func init() {
	register("eval", "top-1/top-5 accuracy and loss of trained weights on a data set", runEval)
}

// runEval scores weights on a split of a data set. Weights written by
// srmlab train carry their recipe, so images are normalised as in training
// even when another data set or domain is evaluated; other weights take
// --recipe.
func runEval(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	model := fs.String("model", "", "model name, e.g. srm-resnet20")
	weightsPath := fs.String("weights", "", "weights: OUT/weights.safetensors of srmlab train, or a torch.save state_dict")
	data := fs.String("data", "", "data set spec, one of:\n"+datasets.Specs)
	split := fs.String("split", "test", "split to score: test, val or train (without augmentation)")
	batch := fs.Int("batch", 128, "images per forward pass")
	recipe := fs.String("recipe", "", "for weights without srmlab metadata: cifar or imagenet (default: by image size)")
	device := deviceFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab eval --model M --weights FILE --data SPEC [--split test|val|train] [--batch B] [--device cpu|cuda]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *model == "" || *weightsPath == "" || *data == "":
		fs.Usage()
		return fmt.Errorf("--model, --weights and --data are required")
	case *batch < 1:
		return fmt.Errorf("--batch %d: want at least 1", *batch)
	}
	splits, err := datasets.Open(*data)
	if err != nil {
		return err
	}
	ds := map[string]datasets.Dataset{"test": splits.Test, "val": splits.Val, "train": splits.Train}[*split]
	if ds == nil {
		return fmt.Errorf("--split %q: %s has no such split", *split, *data)
	}
	r, ok, err := train.ReadRecipe(*weightsPath)
	if err != nil {
		return err
	}
	if !ok {
		if r, err = train.NewRecipe(*recipe, splits.Train); err != nil {
			return err
		}
	}
	m, err := train.LoadModel(*model, srm.Options{Classes: len(splits.Train.Classes()), InputSize: r.InputSize}, *weightsPath)
	if err != nil {
		return err
	}
	release, err := placeModel(m, *device)
	if err != nil {
		return err
	}
	defer release()
	met, err := train.Evaluate(ctx, m, ds, r.TestTransform(), *batch)
	if err != nil {
		return err
	}
	fmt.Printf("%s on %s (%s, %d images): loss %.4f  top-1 %.2f%%  top-5 %.2f%%\n",
		m.Name, *data, *split, met.Images, met.Loss, met.Top1, met.Top5)
	return nil
}
