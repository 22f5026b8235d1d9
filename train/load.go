package train

import (
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/weights"
)

// LoadModel builds the zoo model name with o and loads its weights from path
// (srmlab's safetensors or a torch.save state_dict), ready for evaluation.
// It is what every consumer of trained weights (srmlab eval and predict,
// the analyses) does before running a model.
func LoadModel(name string, o srm.Options, path string) (*srm.Model, error) {
	m, err := srm.NewModel(name, o)
	if err != nil {
		return nil, err
	}
	if err := weights.Load(m.Module(), path); err != nil {
		return nil, err
	}
	m.Eval()
	return m, nil
}
