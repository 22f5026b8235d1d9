package datasets_test

import (
	"context"
	"fmt"
	"log"

	"github.com/srmlab/srmlab/datasets"
)

// A CIFAR-style training epoch over the bundled textures, with the CIFAR
// recipe's augmentation and the set's own channel statistics.
func Example() {
	sp, err := datasets.Open("textures:train=20:test=5")
	if err != nil {
		log.Fatal(err)
	}
	norm, err := datasets.ChannelStats(sp.Train)
	if err != nil {
		log.Fatal(err)
	}
	loader, err := datasets.NewLoader(sp.Train, datasets.LoaderConfig{
		BatchSize: 64, Shuffle: true, DropLast: true, Seed: 1,
		Transform: datasets.CIFARTrain(norm),
	})
	if err != nil {
		log.Fatal(err)
	}
	stream, err := loader.Stream(context.Background(), 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for stream.Next() {
		b := stream.Batch()
		fmt.Printf("batch %d: %d x %d x %d x %d\n", b.Index, b.N, b.C, b.H, b.W)
	}
	if err := stream.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sp.Train.Classes()[:3])
	// Output:
	// batch 0: 64 x 3 x 32 x 32
	// batch 1: 64 x 3 x 32 x 32
	// batch 2: 64 x 3 x 32 x 32
	// [smooth blotchy grainy]
}

// Resuming an interrupted epoch at batch 2 yields the same batches the
// uninterrupted epoch would have from there on.
func ExampleLoader_Stream() {
	sp, _ := datasets.Open("domains:train=5:test=1:domain=sketch,photo")
	loader, _ := datasets.NewLoader(sp.Train, datasets.LoaderConfig{BatchSize: 32, Shuffle: true, Seed: 7})
	stream, _ := loader.Stream(context.Background(), 4, 2)
	defer stream.Close()
	for stream.Next() {
		b := stream.Batch()
		fmt.Println("batch", b.Index, "of", loader.Len(), "holds", b.N, "images; first domain", sp.Train.Domains()[b.Domains[0]])
	}
	// Output:
	// batch 2 of 4 holds 32 images; first domain sketch
	// batch 3 of 4 holds 4 images; first domain photo
}

func ExampleOpen() {
	_, err := datasets.Open("cifar100:/data/cifar-100-binary:label=medium")
	fmt.Println(err)
	// Output:
	// datasets: spec "cifar100:/data/cifar-100-binary:label=medium": label=medium, want fine or coarse
}

func ExampleCompose() {
	t := datasets.Compose(datasets.Resize{Short: 40}, datasets.CenterCrop{Size: 32}, datasets.ImageNetNorm())
	out, _ := t.Apply(datasets.NewImage(3, 60, 80), nil)
	fmt.Println(out.C, out.H, out.W)
	// Output:
	// 3 32 32
}
