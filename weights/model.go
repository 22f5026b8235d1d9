package weights

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// legacyTorchMagic opens files written by torch.save before PyTorch 1.6 (or
// with _use_new_zipfile_serialization=False): pickle protocol 2 and the
// magic number 0x1950a86a20f9469cfc6c.
const legacyTorchMagic = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

// Load copies the checkpoint at path into m's parameters and buffers,
// matching file keys to nn.Var names and converting element types. The
// format is told by content, not by name: a zip archive is a torch.save
// state_dict (see LoadTorch), anything else must be safetensors.
//
// Every key is checked before anything is copied: if any of m's variables
// is missing from the file, any file tensor has no variable, or any shape
// differs, Load returns one *MismatchError listing them all and m is left
// untouched. A one-element tensor matches a 0-d one, since PyTorch stores
// num_batches_tracked as a 0-d tensor and a model may keep it as shape [1].
func Load(m nn.Module, path string) error {
	src, err := readCheckpoint(path)
	if err != nil {
		return err
	}
	return Assign(m.Vars(), src, path)
}

// readCheckpoint reads a torch.save or safetensors file, chosen by its
// first bytes; the other formats people mistake for checkpoints get a
// message saying what they are.
func readCheckpoint(path string) ([]Named, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	head := make([]byte, len(legacyTorchMagic))
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("weights: %w", err)
	}
	head = head[:n]
	var ts []Named
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		ts, err = readTorch(f, st.Size())
	case bytes.HasPrefix(head, []byte(legacyTorchMagic)):
		err = fmt.Errorf("torch: the legacy torch.save format (before PyTorch 1.6) is not supported: load it in PyTorch and torch.save it again")
	case bytes.HasPrefix(head, []byte(npyMagic)):
		err = fmt.Errorf("a .npy array, not a checkpoint")
	default:
		ts, _, err = readSafetensors(f, st.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	return ts, nil
}

// ShapeMismatch is a key whose tensor has another shape in the file than in
// the model.
type ShapeMismatch struct {
	Key         string
	Model, File []int
}

// MismatchError lists every key that keeps a checkpoint from loading into a
// model, so that one run shows all that is wrong (a different depth, a
// different recalibration module, another number of classes) instead of
// the first difference.
type MismatchError struct {
	Path       string
	Missing    []string // in the model, not in the file
	Unexpected []string // in the file, not in the model
	Misshaped  []ShapeMismatch
}

// Error gives missing and mis-shaped keys in the model's order and unexpected
// ones in the file's, so related keys stay together.
func (e *MismatchError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing keys: %s", len(e.Missing), strings.Join(e.Missing, ", ")))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected keys: %s", len(e.Unexpected), strings.Join(e.Unexpected, ", ")))
	}
	if len(e.Misshaped) > 0 {
		ms := make([]string, len(e.Misshaped))
		for i, m := range e.Misshaped {
			ms[i] = fmt.Sprintf("%s (model %v, file %v)", m.Key, m.Model, m.File)
		}
		parts = append(parts, fmt.Sprintf("%d mis-shaped keys: %s", len(ms), strings.Join(ms, ", ")))
	}
	return fmt.Sprintf("weights: %s does not fit the model: %s", e.Path, strings.Join(parts, "; "))
}

// Assign copies src into vars as Load does, checking every name and shape
// before it copies anything; path names the source in errors. It serves
// files that hold more than one model's state, such as a training checkpoint
// whose optimiser tensors are split off first.
func Assign(vars []nn.Var, src []Named, path string) error {
	byName := make(map[string]*tensor.Tensor, len(src))
	for _, t := range src {
		byName[t.Name] = t.Tensor
	}
	e := &MismatchError{Path: path}
	inModel := make(map[string]bool, len(vars))
	for _, v := range vars {
		if inModel[v.Name] {
			return fmt.Errorf("weights: the model has two variables named %q", v.Name)
		}
		inModel[v.Name] = true
		t, ok := byName[v.Name]
		switch {
		case !ok:
			e.Missing = append(e.Missing, v.Name)
		case !shapesFit(v.Value, t):
			e.Misshaped = append(e.Misshaped, ShapeMismatch{Key: v.Name, Model: v.Value.Shape(), File: t.Shape()})
		}
	}
	for _, t := range src {
		if !inModel[t.Name] {
			e.Unexpected = append(e.Unexpected, t.Name)
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Misshaped) > 0 {
		return e
	}
	for _, v := range vars {
		v.Value.CopyFrom(byName[v.Name])
	}
	return nil
}

// shapesFit reports whether a file tensor can be copied into a model one.
func shapesFit(model, file *tensor.Tensor) bool {
	if tensor.SameShape(model, file) {
		return true
	}
	return model.Len() == 1 && file.Len() == 1 && model.Rank() <= 1 && file.Rank() <= 1
}

// Save writes m's parameters and buffers to path as safetensors under their
// state_dict names, replacing path atomically. num_batches_tracked counters
// are stored as I64, as PyTorch keeps them, so the file also loads
// unchanged into PyTorch (safetensors.torch.load_file, load_state_dict).
func Save(m nn.Module, path string, metadata map[string]string) error {
	vars := m.Vars()
	ts := make([]Named, len(vars))
	for i, v := range vars {
		ts[i] = Named{Name: v.Name, Tensor: v.Value}
		if v.Name == "num_batches_tracked" || strings.HasSuffix(v.Name, ".num_batches_tracked") {
			ts[i].DType = I64
		}
	}
	return SaveSafetensors(path, ts, metadata)
}
