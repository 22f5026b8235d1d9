// Package weights reads and writes srmlab's checkpoints and arrays:
// safetensors files (srmlab's own format), PyTorch state_dicts written by
// torch.save (to start from the official SRM weights or compare with a
// PyTorch run), and NumPy .npy arrays (inputs and outputs of predict).
//
// Every reader treats its file as untrusted: sizes and offsets are checked
// against the file before anything is allocated, and a malformed file gives
// an error naming the file and the place, never a panic. Every writer
// replaces its file atomically, so an interrupted run leaves either the old
// file or the new one.
//
// Tensors are matched to a model by their state_dict names (nn.Var.Name);
// Load checks every name and shape before it copies anything, so a model is
// either fully loaded or left untouched.
package weights
