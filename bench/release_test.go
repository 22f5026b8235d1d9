package bench

import (
	"slices"
	"testing"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// A releasing backward pass must give the gradients of a plain one, bit for
// bit, even when the recycled buffers it hands out hold another step's
// values: an operation that did not overwrite all of an Empty result would
// show here.
func TestReleasingBackwardGradients(t *testing.T) {
	for _, name := range []string{"resnet20", "srm-resnet20", "se-resnet20", "ge-resnet20"} {
		t.Run(name, func(t *testing.T) {
			grads := func(release bool) [][]float32 {
				if release { // fill the recycler with another step's feature maps
					s, err := NewTrainStep(name, 4, nil)
					if err == nil {
						err = s.Run()
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				s, err := NewTrainStep(name, 4, nil)
				if err != nil {
					t.Fatal(err)
				}
				logits, err := s.Model.Forward(s.x)
				if err != nil {
					t.Fatal(err)
				}
				loss, err := op.CrossEntropy(logits, s.labels)
				if err != nil {
					t.Fatal(err)
				}
				if release {
					loss.BackwardReleasing()
				} else {
					loss.Backward()
				}
				var out [][]float32
				for _, v := range s.Model.Vars() {
					if v.Value.Grad != nil {
						out = append(out, v.Value.Grad.Float32s())
					}
				}
				return out
			}
			plain := grads(false)
			released := grads(true)
			if len(plain) == 0 || len(plain) != len(released) {
				t.Fatalf("%d and %d gradients", len(plain), len(released))
			}
			for i := range plain {
				if !slices.Equal(plain[i], released[i]) {
					t.Fatalf("gradient %d differs with a releasing backward pass", i)
				}
			}
		})
	}
	tensor.FreeRecycled()
}
