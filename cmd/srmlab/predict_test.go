package main

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/weights"
)

func TestPredictMatchesForward(t *testing.T) {
	dir := t.TempDir()
	m, err := srm.NewModel("srm-resnet20", srm.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Non-trivial running statistics, so that evaluation mode matters.
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range m.Vars() {
		if strings.HasSuffix(v.Name, "running_mean") || strings.HasSuffix(v.Name, "running_var") {
			v.Value.FillUniform(r, 0.5, 1.5)
		}
	}
	wpath := filepath.Join(dir, "w.safetensors")
	if err := weights.Save(m.Module(), wpath, nil); err != nil {
		t.Fatal(err)
	}
	x := tensor.Zeros(5, 3, 32, 32)
	x.FillNormal(r, 0, 1)
	in, out := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := weights.WriteNpy(in, x); err != nil {
		t.Fatal(err)
	}
	args := []string{"--model", "srm-resnet20", "--weights", wpath, "--input", in, "--out", out, "--batch", "2"}
	if err := runPredict(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	got, err := weights.ReadNpy(out)
	if err != nil {
		t.Fatal(err)
	}
	m.Eval()
	want, err := m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(got, want) || got.Dim(1) != 10 {
		t.Fatalf("logits of shape %v, want %v", got.Shape(), want.Shape())
	}
	for i := range got.Len() {
		if d := math.Abs(got.At(i) - want.At(i)); d > 1e-4*(1+math.Abs(want.At(i))) {
			t.Fatalf("logit %d = %v, want %v", i, got.At(i), want.At(i))
		}
	}

	err = runPredict(context.Background(), append(args, "--classes", "100"))
	if err == nil || !strings.Contains(err.Error(), "fc.weight (model [100 64], file [10 64])") {
		t.Errorf("weights for 10 classes loaded into a 100-class model: %v", err)
	}
}

func TestPredictRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "x.npy")
	if err := weights.WriteNpy(in, tensor.Zeros(2, 1, 32, 32)); err != nil {
		t.Fatal(err)
	}
	args := []string{"--model", "resnet20", "--weights", filepath.Join(dir, "absent"), "--input", in, "--out", filepath.Join(dir, "y.npy")}
	err := runPredict(context.Background(), args)
	if err == nil || !strings.Contains(err.Error(), "want a batch of images (N, 3, H, W)") {
		t.Errorf("a one-channel batch: %v", err)
	}
	if err := runPredict(context.Background(), []string{"--model", "resnet20"}); err == nil {
		t.Error("missing flags accepted")
	}
}
