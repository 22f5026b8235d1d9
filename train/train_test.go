package train_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
	"github.com/srmlab/srmlab/weights"
)

// tiny is a run small enough to repeat several times per test: 80 bundled
// texture images in 5 batches per epoch, 3 epochs, with SRM's no-decay
// parameter group and the step schedule's drop at epoch 3 in play.
func tiny(out string) train.Config {
	cfg := train.DefaultConfig()
	cfg.Model, cfg.Data, cfg.Epochs, cfg.Batch, cfg.Out = "srm-resnet20", "textures:train=8:test=4", 3, 16, out
	return cfg
}

var (
	refOnce sync.Once
	refDir  string
	refRes  *train.Result
	refErr  error
)

// reference runs tiny once, uninterrupted, for the resumption tests to
// match. Its folder is only read afterwards.
func reference(t *testing.T) (string, *train.Result) {
	t.Helper()
	refOnce.Do(func() {
		refDir, refErr = os.MkdirTemp("", "srmlab-train-ref")
		if refErr == nil {
			refRes, refErr = train.Run(context.Background(), tiny(refDir), nil)
		}
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return refDir, refRes
}

func TestMain(m *testing.M) {
	code := m.Run()
	if refDir != "" {
		os.RemoveAll(refDir)
	}
	os.Exit(code)
}

// sameResults checks that the run in dir ended where the reference did:
// identical weight file bytes and metrics apart from the timing columns.
func sameResults(t *testing.T, dir string) {
	t.Helper()
	ref, _ := reference(t)
	want, err := os.ReadFile(filepath.Join(ref, train.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, train.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the uninterrupted run's", train.WeightsFile)
	}
	wantRows, err := train.ReadMetrics(filepath.Join(ref, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	gotRows, err := train.ReadMetrics(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(gotRows) != len(wantRows) {
		t.Fatalf("%d metrics rows, want %d", len(gotRows), len(wantRows))
	}
	for i := range gotRows {
		g, w := gotRows[i], wantRows[i]
		g.ImagesPerSec, g.Seconds, w.ImagesPerSec, w.Seconds = 0, 0, 0, 0
		if g != w {
			t.Errorf("metrics row %d:\n got %+v\nwant %+v", i+1, g, w)
		}
	}
}

func TestResumeAfterCancel(t *testing.T) {
	reference(t)
	for _, c := range []struct {
		name string
		cb   func(cancel context.CancelFunc) train.Callback
	}{
		{"mid-epoch", func(cancel context.CancelFunc) train.Callback {
			return train.CallbackFuncs{Batch: func(p train.Progress) {
				if p.Epoch == 2 && p.Batch == 2 {
					cancel()
				}
			}}
		}},
		{"after epoch 1", func(cancel context.CancelFunc) train.Callback {
			return train.CallbackFuncs{Epoch: func(r train.Row) {
				if r.Epoch == 1 {
					cancel()
				}
			}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tiny(t.TempDir())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := train.Run(ctx, cfg, c.cb(cancel))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled run: %v, want context.Canceled", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.Out, train.WeightsFile)); err == nil {
				t.Fatalf("a stopped run wrote %s", train.WeightsFile)
			}
			cfg.Resume = true
			if _, err := train.Run(context.Background(), cfg, nil); err != nil {
				t.Fatal(err)
			}
			sameResults(t, cfg.Out)
		})
	}
}

// TestResumeAfterSIGKILL kills "srmlab train" with SIGKILL twice, each time
// just after a new checkpoint appears (mid-epoch, with --checkpoint-every),
// and resumes it to the end.
func TestResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the srmlab binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build srmlab with")
	}
	reference(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "srmlab")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/srmlab/srmlab/cmd/srmlab").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := tiny(filepath.Join(tmp, "run"))
	args := []string{"train", "--model", cfg.Model, "--data", cfg.Data, "--epochs", strconv.Itoa(cfg.Epochs),
		"--batch", strconv.Itoa(cfg.Batch), "--out", cfg.Out, "--checkpoint-every", "2"}
	ckpt := filepath.Join(cfg.Out, train.CheckpointFile)
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		// The arithmetic, and so the resumption, depends on GOMAXPROCS,
		// which go test -cpu may have changed in this process.
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(runtime.GOMAXPROCS(0)))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// killAfterNewCheckpoint waits until ckpt is a file other than before
	// (each checkpoint is a new file renamed into place), then kills.
	killAfterNewCheckpoint := func(cmd *exec.Cmd, before os.FileInfo) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("srmlab train ended (%v) before it could be killed", err)
			default:
			}
			if fi, err := os.Stat(ckpt); err == nil && (before == nil || !os.SameFile(fi, before)) {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				<-done
				return
			}
		}
		t.Fatal("no checkpoint appeared")
	}
	killAfterNewCheckpoint(start(args...), nil)
	first, err := os.Stat(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	resume := []string{"train", "--out", cfg.Out, "--resume"}
	killAfterNewCheckpoint(start(resume...), first)
	if out, err := exec.Command(bin, resume...).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	sameResults(t, cfg.Out)
}

func TestResumeRefusals(t *testing.T) {
	ref, _ := reference(t)
	cfg := tiny(ref)
	if _, err := train.Run(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "holds a run") {
		t.Errorf("a new run in a used folder: %v", err)
	}
	cfg.Resume = true
	cfg.LR = 0.2
	if _, err := train.Run(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "lr 0.1 (now 0.2)") {
		t.Errorf("resuming with another learning rate: %v", err)
	}
	saved, err := train.ReadConfig(ref)
	if err != nil {
		t.Fatal(err)
	}
	procs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(procs)
	runtime.GOMAXPROCS(procs + 1)
	if _, err := train.Run(context.Background(), saved, nil); err == nil || !strings.Contains(err.Error(), "GOMAXPROCS="+strconv.Itoa(procs)) {
		t.Errorf("resuming under another GOMAXPROCS: %v", err)
	}
}

// TestNonFiniteStops drives the learning rate to 1e29 after the first
// epoch, a sure divergence, and checks that the run stops with an error
// naming where, leaving the first epoch's checkpoint untouched.
func TestNonFiniteStops(t *testing.T) {
	cfg := tiny(t.TempDir())
	cfg.Milestones, cfg.Gamma = []int{1}, 1e30
	ckpt := filepath.Join(cfg.Out, train.CheckpointFile)
	var good []byte
	_, err := train.Run(context.Background(), cfg, train.CallbackFuncs{Epoch: func(train.Row) {
		good, _ = os.ReadFile(ckpt)
	}})
	var nf *train.NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("diverging run: %v, want a *NonFiniteError", err)
	}
	t.Log(err)
	if nf.Epoch != 2 || nf.Batch < 2 || !(nf.What == "loss" || strings.HasPrefix(nf.What, "gradient of ")) {
		t.Errorf("error at epoch %d, batch %d, %q; want epoch 2, a batch after the first, the loss or a named gradient", nf.Epoch, nf.Batch, nf.What)
	}
	if got, _ := os.ReadFile(ckpt); len(good) == 0 || !bytes.Equal(got, good) {
		t.Errorf("the checkpoint changed after the last good epoch")
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, train.WeightsFile)); err == nil {
		t.Errorf("a diverged run wrote %s", train.WeightsFile)
	}
}

// TestLearnsTextures trains SRM-ResNet-20 briefly on 400 bundled texture
// images and checks that it beats chance clearly, that the callback and the
// terminal report every step and epoch, that metrics.csv reads back as the
// rows returned, and that the saved weights evaluate as in training.
func TestLearnsTextures(t *testing.T) {
	cfg := train.DefaultConfig()
	cfg.Model, cfg.Data, cfg.Epochs, cfg.Batch, cfg.Out = "srm-resnet20", "textures:train=40:test=20", 3, 32, t.TempDir()
	var term bytes.Buffer
	terminal := train.NewTerminal(&term)
	var batches, epochs int
	var last train.Progress
	cb := train.CallbackFuncs{
		Batch: func(p train.Progress) {
			batches++
			last = p
			terminal.OnBatch(p)
		},
		Epoch: func(r train.Row) {
			epochs++
			terminal.OnEpoch(r)
		},
	}
	start := time.Now()
	res, err := train.Run(context.Background(), cfg, cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d epochs in %v", cfg.Epochs, time.Since(start).Round(time.Millisecond))

	const chance = 10.0 // percent, 10 classes
	final := res.Rows[len(res.Rows)-1]
	t.Logf("final row %+v", final)
	if final.TestTop1 < 2*chance {
		t.Errorf("test top-1 %.1f%%, want at least twice chance (%.0f%%)", final.TestTop1, 2*chance)
	}

	perEpoch := 400 / 32 // full batches only
	if batches != cfg.Epochs*perEpoch || epochs != cfg.Epochs {
		t.Errorf("callback saw %d batches and %d epochs, want %d and %d", batches, epochs, cfg.Epochs*perEpoch, cfg.Epochs)
	}
	if last.Epoch != cfg.Epochs || last.Batch != perEpoch || last.Batches != perEpoch || last.ETA < 0 || last.ImagesPerSec <= 0 || last.LR != cfg.RateAt(2, perEpoch-1, perEpoch) {
		t.Errorf("last progress report %+v", last)
	}
	if lines := strings.Split(strings.TrimSpace(term.String()), "\n"); len(lines) != cfg.Epochs || !strings.HasPrefix(lines[2], "epoch 3 ") {
		t.Errorf("terminal output to a buffer:\n%s\nwant one line per epoch", term.String())
	}

	rows, err := train.ReadMetrics(filepath.Join(cfg.Out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(res.Rows) {
		t.Fatalf("metrics.csv has %d rows, Run returned %d", len(rows), len(res.Rows))
	}
	for i := range rows {
		if rows[i] != res.Rows[i] || rows[i].Epoch != i+1 {
			t.Errorf("metrics.csv row %d reads back as %+v, want %+v", i+1, rows[i], res.Rows[i])
		}
	}
	head, err := os.ReadFile(filepath.Join(cfg.Out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	const columns = "epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,images_per_s,seconds\n"
	if !bytes.HasPrefix(head, []byte(columns)) {
		t.Errorf("metrics.csv header %q, want %q", strings.SplitN(string(head), "\n", 2)[0], columns)
	}

	// The weights file alone, with its recipe, reproduces the test score.
	r, ok, err := train.ReadRecipe(res.Weights)
	if err != nil || !ok || r.Name != "cifar" {
		t.Fatalf("ReadRecipe: %+v, %v, %v", r, ok, err)
	}
	m, err := srm.NewModel(cfg.Model, srm.Options{Classes: 10, InputSize: r.InputSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := weights.Load(m.Module(), res.Weights); err != nil {
		t.Fatal(err)
	}
	splits, err := datasets.Open(cfg.Data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := train.Evaluate(context.Background(), m, splits.Test, r.TestTransform(), 50)
	if err != nil {
		t.Fatal(err)
	}
	if got.Images != 200 || got.Top1 != final.TestTop1 || got.Top5 != final.TestTop5 {
		t.Errorf("reloaded weights score %+v, the run's last epoch %+v", got, final)
	}
}

func TestRateAt(t *testing.T) {
	const batches = 10
	step := train.DefaultConfig()
	step.Epochs = 8 // milestones 4 and 6
	cosine := train.DefaultConfig()
	cosine.Epochs, cosine.Schedule, cosine.WarmupEpochs = 4, "cosine", 2
	for _, c := range []struct {
		name         string
		cfg          train.Config
		epoch, batch int
		want         float64
	}{
		{"step before the first milestone", step, 3, 9, 0.1},
		{"step after the first milestone", step, 4, 0, 0.1 * 0.1},
		{"step after the second milestone", step, 7, 9, 0.1 * 0.1 * 0.1},
		{"warm-up's first step", cosine, 0, 0, 0.1 / 20},
		{"warm-up's last step", cosine, 1, 9, 0.1},
		{"cosine's first step", cosine, 2, 0, 0.1},
		{"cosine's middle", cosine, 3, 0, 0.05},
	} {
		// Go's float arithmetic may differ from the literal in the last
		// place; a relative 1e-12 allows that and nothing else.
		got := c.cfg.RateAt(c.epoch, c.batch, batches)
		if d := got - c.want; d > 1e-12*c.want || d < -1e-12*c.want {
			t.Errorf("%s: RateAt(%d, %d) = %g, want %g", c.name, c.epoch, c.batch, got, c.want)
		}
	}
}
