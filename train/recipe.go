package train

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/weights"
)

// Recipe is how images reach the model: the augmentation family, the input
// size the model is built for and the normalisation. It is stored with the
// weights, so that evaluating them later, even on another data set or
// domain, normalises as training did.
type Recipe struct {
	// Name is "cifar" (pad-4 random 32x32 crop and flip; the central
	// 32x32 window for testing) or "imagenet" (RandomResizedCrop(224)
	// and flip; Resize(256) and CenterCrop(224) for testing).
	Name      string    `json:"name"`
	InputSize int       `json:"input_size"`
	Mean      []float32 `json:"mean"`
	Std       []float32 `json:"std"`
}

// smallImage is the largest image side that takes the CIFAR recipe when
// the recipe is chosen by size: CIFAR's 32, MNIST's 28 and the bundled sets'
// 32 do, DTD's and Office-Home's photographs do not.
const smallImage = 64

// NewRecipe returns the named recipe ("cifar" or "imagenet") for a data
// set's training split, or for "" the one that fits its images: "cifar" when
// the first image has no side over 64 pixels. The CIFAR recipe normalises
// with the training images' own channel statistics (datasets.ChannelStats,
// one pass over the split), the ImageNet recipe with ImageNet's.
func NewRecipe(name string, train datasets.Dataset) (Recipe, error) {
	if name == "" {
		if train.Len() == 0 {
			return Recipe{}, fmt.Errorf("train: no training images")
		}
		s, err := train.Sample(0)
		if err != nil {
			return Recipe{}, err
		}
		name = "imagenet"
		if max(s.Image.H, s.Image.W) <= smallImage {
			name = "cifar"
		}
	}
	switch name {
	case "cifar":
		norm, err := datasets.ChannelStats(train)
		if err != nil {
			return Recipe{}, err
		}
		return Recipe{Name: name, InputSize: 32, Mean: norm.Mean, Std: norm.Std}, nil
	case "imagenet":
		norm := datasets.ImageNetNorm()
		return Recipe{Name: name, InputSize: 224, Mean: norm.Mean, Std: norm.Std}, nil
	}
	return Recipe{}, fmt.Errorf("train: unknown recipe %q (want cifar, imagenet, or empty to choose by image size)", name)
}

// TrainTransform is the recipe's augmentation for training images.
func (r Recipe) TrainTransform() datasets.Transform {
	norm := datasets.Normalize{Mean: r.Mean, Std: r.Std}
	if r.Name == "imagenet" {
		return datasets.Compose(datasets.RandomResizedCrop{Size: r.InputSize}, datasets.HFlip{P: 0.5}, norm)
	}
	return datasets.Compose(datasets.RandomCrop{Size: r.InputSize, Pad: 4}, datasets.HFlip{P: 0.5}, norm)
}

// TestTransform is the recipe's deterministic view of evaluation images.
func (r Recipe) TestTransform() datasets.Transform {
	norm := datasets.Normalize{Mean: r.Mean, Std: r.Std}
	if r.Name == "imagenet" {
		return datasets.Compose(datasets.Resize{Short: r.InputSize * 8 / 7}, datasets.CenterCrop{Size: r.InputSize}, norm)
	}
	// A no-op for 32x32 images; smaller ones (MNIST) are padded to the
	// size they were trained at.
	return datasets.Compose(datasets.CenterCrop{Size: r.InputSize}, norm)
}

// Metadata keys of the files Run writes.
const (
	metaConfig = "srmlab.config"
	metaRecipe = "srmlab.recipe"
	metaState  = "srmlab.state"
)

// ReadRecipe returns the recipe stored in a weights or checkpoint file that
// Run wrote. ok is false for weights from elsewhere (a torch.save file,
// safetensors without srmlab's metadata), which leave the caller to choose.
func ReadRecipe(path string) (r Recipe, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return r, false, fmt.Errorf("train: %w", err)
	}
	head := make([]byte, 4)
	_, err = f.ReadAt(head, 0)
	f.Close()
	if err == nil && string(head) == "PK\x03\x04" { // torch.save's zip
		return r, false, nil
	}
	_, meta, err := weights.LoadSafetensors(path)
	if err != nil {
		return r, false, err
	}
	s, ok := meta[metaRecipe]
	if !ok {
		return r, false, nil
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, false, fmt.Errorf("train: %s: recipe metadata: %w", path, err)
	}
	return r, true, nil
}
