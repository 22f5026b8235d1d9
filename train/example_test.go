package train_test

import (
	"context"
	"fmt"
	"log"

	"github.com/srmlab/srmlab/train"
)

// A notebook-style run: SRM-ResNet-20 on the bundled textures with the CIFAR
// recipe, plotting from the callback. Run it again with Resume set to
// continue it after an interruption. (Not run as a test: it trains for
// minutes.)
func Example() {
	cfg := train.DefaultConfig()
	cfg.Model, cfg.Data, cfg.Epochs, cfg.Out = "srm-resnet20", "textures", 10, "runs/srm20-textures"
	res, err := train.Run(context.Background(), cfg, train.CallbackFuncs{
		Epoch: func(r train.Row) { fmt.Printf("epoch %d: test top-1 %.1f%%\n", r.Epoch, r.TestTop1) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("weights in", res.Weights)
}
