package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/srmlab/srmlab/blas"
	"github.com/srmlab/srmlab/weights"
)

// The files of a run folder.
const (
	CheckpointFile = "checkpoint.safetensors"
	WeightsFile    = "weights.safetensors"
	MetricsFile    = "metrics.csv"
)

// momentumPrefix puts SGD's momentum buffers beside the model's tensors in
// a checkpoint, under names no model variable has.
const momentumPrefix = "optimizer.momentum_buffer."

// stateVersion changes whenever the checkpoint's contents change meaning.
const stateVersion = 1

// state is where a run stands, stored as JSON in the checkpoint's metadata
// beside the tensors. Epoch and Batch count what is done: Batch steps of
// epoch Epoch (from 0). The sums cover those Batch steps, so that the
// epoch's train_loss and train_top1 come out the same however often the
// run was stopped in it. Every float64 survives the JSON round trip exactly.
type state struct {
	Version  int     `json:"version"`
	Epoch    int     `json:"epoch"`
	Batch    int     `json:"batch"`
	LossSum  float64 `json:"loss_sum"`
	Top1Hits int     `json:"top1_hits"`
	Seen     int     `json:"seen"`
	Rows     []Row   `json:"rows"`
	// GOMAXPROCS and BLAS are what the floating-point results depend on
	// besides the data: convolutions split their gradient sums by core,
	// and BLAS libraries and kernels sum in different orders.
	GOMAXPROCS int    `json:"gomaxprocs"`
	BLAS       string `json:"blas"`
}

// environment returns the state fields that a bit-identical resumption
// needs to find unchanged.
func environment() (procs int, lib string) { return runtime.GOMAXPROCS(0), blas.Name() }

// checkEnvironment refuses to resume where the arithmetic would differ,
// since the run would silently stop being reproducible.
func (s state) checkEnvironment(path string) error {
	procs, lib := environment()
	var diffs []string
	if procs != s.GOMAXPROCS {
		diffs = append(diffs, fmt.Sprintf("GOMAXPROCS is %d, the run had %d (set GOMAXPROCS=%d)", procs, s.GOMAXPROCS, s.GOMAXPROCS))
	}
	if lib != s.BLAS {
		diffs = append(diffs, fmt.Sprintf("the BLAS is %s, the run had %s (see SRMLAB_BLAS and OPENBLAS_CORETYPE)", lib, s.BLAS))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("train: %s: resuming here would not reproduce the uninterrupted run: %s", path, strings.Join(diffs, "; "))
	}
	return nil
}

// checkpoint is a checkpoint file's contents.
type checkpoint struct {
	config  Config
	recipe  Recipe
	state   state
	model   []weights.Named
	momenta []weights.Named // named by parameter
}

// readCheckpoint reads and decodes a checkpoint; its tensors are matched to
// a model later, once the recipe has told the model's input size.
func readCheckpoint(path string) (*checkpoint, error) {
	tensors, meta, err := weights.LoadSafetensors(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("train: no run to resume in %s: %s is missing", filepath.Dir(path), filepath.Base(path))
	}
	if err != nil {
		return nil, err
	}
	c := &checkpoint{}
	for key, dst := range map[string]any{metaConfig: &c.config, metaRecipe: &c.recipe, metaState: &c.state} {
		s, ok := meta[key]
		if !ok {
			return nil, fmt.Errorf("train: %s: no %q metadata: not a checkpoint written by srmlab train", path, key)
		}
		if err := json.Unmarshal([]byte(s), dst); err != nil {
			return nil, fmt.Errorf("train: %s: %s metadata: %w", path, key, err)
		}
	}
	if c.state.Version != stateVersion {
		return nil, fmt.Errorf("train: %s: checkpoint version %d, this srmlab reads %d", path, c.state.Version, stateVersion)
	}
	for _, t := range tensors {
		if name, ok := strings.CutPrefix(t.Name, momentumPrefix); ok {
			t.Name = name
			c.momenta = append(c.momenta, t)
		} else {
			c.model = append(c.model, t)
		}
	}
	return c, nil
}

// ReadConfig returns the configuration of the run in dir, with Out set to
// dir and Resume set, ready for Run to continue it. The command line
// starts from it so that --resume needs no other flag.
func ReadConfig(dir string) (Config, error) {
	c, err := readCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		return Config{}, err
	}
	cfg := c.config
	cfg.Out, cfg.Resume = dir, true
	return cfg, nil
}

// metadata is what both the checkpoint and the final weights carry: enough
// to rebuild the model and see images as it was trained to.
func metadata(cfg Config, r Recipe) map[string]string {
	rec, err := json.Marshal(r)
	if err != nil {
		panic(err) // plain fields always marshal
	}
	return map[string]string{"model": cfg.Model, metaConfig: cfg.identity(), metaRecipe: string(rec)}
}
