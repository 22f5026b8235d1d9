package srm

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/optim"
	"github.com/srmlab/srmlab/tensor"
)

func images(r *rand.Rand, dt tensor.DType, n, size int) *tensor.Tensor {
	x := tensor.New(dt, n, 3, size, size)
	x.FillNormal(r, 0, 1)
	return x
}

func TestParseName(t *testing.T) {
	for _, name := range Names() {
		s, depth, err := ParseName(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := joinName(s.String(), depth); got != name {
			t.Errorf("%s parses back to %s", name, got)
		}
	}
	for name, want := range map[string]string{
		"ge--resnet56":                "ge-",
		"ge+-resnet50":                "ge+",
		"srm:avg+max-resnet20":        "srm:avg+max",
		"srm:max+avg:biased-resnet20": "srm:avg+max:biased",
	} {
		if s, _, err := ParseName(name); err != nil || s.String() != want {
			t.Errorf("%s: module %v, %v; want %s", name, s, err, want)
		}
	}
	for _, name := range []string{"resnet", "resnet51", "srmresnet50", "foo-resnet50", "vgg16", "srm-resnet50x", "-resnet50"} {
		if _, err := NewModel(name, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestModelKeys(t *testing.T) {
	m, err := NewModel("srm-resnet50", Options{})
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	var names []string
	for _, v := range m.Vars() {
		shapes[v.Name] = v.Value.Shape()
		names = append(names, v.Name)
		wantNoDecay := strings.Contains(v.Name, "rclb.cfc") || strings.HasSuffix(v.Name, "rclb.bn.weight") || strings.HasSuffix(v.Name, "rclb.bn.bias")
		if v.NoDecay != wantNoDecay {
			t.Errorf("%s: NoDecay %v", v.Name, v.NoDecay)
		}
	}
	for key, want := range map[string][]int{
		"conv1.weight":                         {64, 3, 7, 7},
		"bn1.running_var":                      {64},
		"layer1.0.conv1.weight":                {64, 64, 1, 1},
		"layer2.0.conv2.weight":                {128, 128, 3, 3},
		"layer1.0.downsample.0.weight":         {256, 64, 1, 1},
		"layer1.0.downsample.1.bias":           {256},
		"layer4.2.conv3.weight":                {2048, 512, 1, 1},
		"layer1.0.rclb.cfc":                    {256, 2},
		"layer4.2.rclb.bn.running_mean":        {2048},
		"layer3.5.rclb.bn.num_batches_tracked": {},
		"fc.weight":                            {1000, 2048},
		"fc.bias":                              {1000},
	} {
		if got, ok := shapes[key]; !ok || !slices.Equal(got, want) {
			t.Errorf("%s: shape %v (present %v), want %v", key, got, ok, want)
		}
	}
	// The official registration order within a block.
	i := slices.Index(names, "layer1.0.bn3.num_batches_tracked")
	if want := []string{"layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight"}; names[i+1] != want[0] || names[i+2] != want[1] || names[i+7] != "layer1.0.rclb.cfc" {
		t.Errorf("order after bn3: %v", names[i+1:i+8])
	}
	if got := len(m.Recalibrators()); got != 16 || m.Recalibrators()[3].Name != "layer2.0.rclb" {
		t.Errorf("%d recalibrators, the 4th %s", got, m.Recalibrators()[3].Name)
	}

	built := map[string]*Model{}
	for _, tc := range []struct {
		name, key string
		want      []int
	}{
		{"se-resnet18", "layer1.0.rclb.fc.0.weight", []int{4, 64}},
		{"se-resnet18", "layer4.1.rclb.fc.2.bias", []int{512}},
		{"ge-resnet18", "layer1.0.rclb.conv.0.weight", []int{64, 1, 56, 56}},
		{"ge-resnet18", "layer4.1.rclb.conv.0.weight", []int{512, 1, 7, 7}},
		{"ge-resnet18", "layer2.0.rclb.conv.1.running_var", []int{128}},
		{"ge-resnet18", "layer2.0.downsample.1.running_var", []int{128}},
		{"ge-resnet20", "layer3.2.rclb.conv.0.bias", []int{64}},
		{"ge-resnet20", "layer1.0.rclb.conv.0.weight", []int{16, 1, 32, 32}},
		{"ge+-resnet20", "layer1.0.rclb.fc.0.weight", []int{1, 16, 1, 1}},
		{"resnet20", "layer2.0.conv1.weight", []int{32, 16, 3, 3}},
	} {
		m := built[tc.name]
		if m == nil {
			var err error
			if m, err = NewModel(tc.name, Options{}); err != nil {
				t.Fatal(err)
			}
			built[tc.name] = m
		}
		found := false
		for _, v := range m.Vars() {
			if v.Name == tc.key {
				found = true
				if !slices.Equal(v.Value.Shape(), tc.want) {
					t.Errorf("%s %s: shape %v, want %v", tc.name, tc.key, v.Value.Shape(), tc.want)
				}
			}
		}
		if !found {
			t.Errorf("%s has no %s", tc.name, tc.key)
		}
	}
	// Option A has no downsample parameters; option B has conv and BN.
	a, _ := NewModel("resnet20", Options{})
	b, _ := NewModel("resnet20", Options{Shortcut: "B"})
	if hasKey(a, "layer2.0.downsample.0.weight") || !hasKey(b, "layer2.0.downsample.0.weight") || hasKey(b, "layer1.0.downsample.0.weight") {
		t.Error("CIFAR shortcuts: option A has projection parameters, or option B lacks them where the shape changes, or has them where it does not")
	}
}

func hasKey(m *Model, key string) bool {
	for _, v := range m.Vars() {
		if v.Name == key {
			return true
		}
	}
	return false
}

func TestModelInit(t *testing.T) {
	m1, _ := NewModel("srm-resnet20", Options{Seed: 3})
	m2, _ := NewModel("srm-resnet20", Options{Seed: 3})
	m3, _ := NewModel("srm-resnet20", Options{Seed: 4})
	v1, v2, v3 := m1.Vars(), m2.Vars(), m3.Vars()
	same := func(a, b *tensor.Tensor) bool { return slices.Equal(a.Float64s(), b.Float64s()) }
	differs := false
	for i := range v1 {
		if !same(v1[i].Value, v2[i].Value) {
			t.Fatalf("%s differs between equal seeds", v1[i].Name)
		}
		differs = differs || !same(v1[i].Value, v3[i].Value)
	}
	if !differs {
		t.Error("different seeds give equal weights")
	}
	// The official initialisation: conv weights N(0, 2/(k·k·out)).
	for _, v := range v1 {
		if v.Name == "layer3.0.conv2.weight" { // 64·9 fan-out: std 0.0589
			s, n := 0.0, float64(v.Value.Len())
			for _, w := range v.Value.Float64s() {
				s += w * w
			}
			if std := (s / n); std < 0.0589*0.0589*0.9 || std > 0.0589*0.0589*1.1 {
				t.Errorf("%s: variance %v, want about %v", v.Name, std, 0.0589*0.0589)
			}
		}
		if strings.HasSuffix(v.Name, "rclb.cfc") {
			for _, w := range v.Value.Float64s() {
				if w != 0 {
					t.Fatalf("%s is not zero at init", v.Name)
				}
			}
		}
	}
}

// TestResNet20Step runs a training forward and backward of plain and SRM
// ResNet-20 on a small batch, and checks the SRM gates.
func TestResNet20Step(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"resnet20", "srm-resnet20", "se-resnet20", "ge-resnet20"} {
		m, err := NewModel(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		logits, err := m.Forward(images(r, tensor.Float32, 4, 32))
		if err != nil {
			t.Fatal(err)
		}
		if s := logits.Shape(); s[0] != 4 || s[1] != 10 {
			t.Fatalf("%s: logits %v", name, s)
		}
		loss, err := op.CrossEntropy(logits, []int{0, 3, 9, 3})
		if err != nil {
			t.Fatal(err)
		}
		loss.Backward()
		for _, v := range m.Vars() {
			if v.Buffer {
				continue
			}
			if v.Value.Grad == nil {
				t.Errorf("%s: %s got no gradient", name, v.Name)
			} else if err := v.Value.Grad.CheckFinite(v.Name); err != nil {
				t.Error(err)
			}
		}
		for _, s := range m.Recalibrators() {
			if name == "srm-resnet20" {
				for _, g := range s.Module.Gates().Float64s() {
					if g != 0.5 {
						t.Fatalf("%s: gate %v at init, want 0.5", s.Name, g)
					}
				}
			}
		}
		if n := len(m.Recalibrators()); (name == "resnet20") != (n == 0) {
			t.Errorf("%s: %d recalibrators", name, n)
		}
	}
}

// TestTinyResNetGradient checks the whole network's gradient with finite
// differences: SRM ResNet-20 at 8 px, in float64, in both modes.
func TestTinyResNetGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"srm-resnet20", "se:r4-resnet20"} {
		for _, training := range []bool{true, false} {
			m, err := NewModel(name, Options{InputSize: 8, Shortcut: "B", Classes: 3})
			if err != nil {
				t.Fatal(err)
			}
			nn.Cast(m.Module(), tensor.Float64)
			// Random module parameters (a non-zero cfc, so that SRM's branch
			// matters); the backbone keeps its initialisation, which keeps
			// activations moderate in evaluation mode too.
			for _, s := range m.Recalibrators() {
				randomise(s.Module, r)
			}
			m.SetTraining(training)
			x := images(r, tensor.Float64, 3, 8).SetRequiresGrad(true)
			f := func() *tensor.Tensor {
				y, err := m.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				return y
			}
			wrt := append([]*tensor.Tensor{x}, nn.Params(m.Module())...)
			if err := gradcheck.Compare(f, wrt, 2, 1e-4); err != nil {
				t.Errorf("%s training=%v: %v", name, training, err)
			}
		}
	}
}

func TestModelErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	srm20, _ := NewModel("srm-resnet20", Options{})
	ge20, _ := NewModel("ge-resnet20", Options{})
	for _, tc := range []struct {
		m    *Model
		x    *tensor.Tensor
		want string
	}{
		{srm20, tensor.New(tensor.Float32, 2, 3, 32), "(N, 3, H, W)"},
		{srm20, tensor.New(tensor.Float32, 2, 1, 32, 32), "3-channel"},
		{srm20, tensor.New(tensor.Float32, 0, 3, 32, 32), "batch"},
		{srm20, images(r, tensor.Float64, 2, 32), "float64"},
		{srm20, images(r, tensor.Float32, 2, 4), "at least 2 pixels"}, // layer3 is 1x1
		{ge20, images(r, tensor.Float32, 2, 40), "built for 32x32"},
		{srm20, nil, "batch of images"},
	} {
		// Vars 3 and 5 are bn1's running mean and batch count.
		mean, count := tc.m.Vars()[3].Value.Clone(), tc.m.Vars()[5].Value.Item()
		_, err := tc.m.Forward(tc.x)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s on %v: error %v, want one saying %q", tc.m.Name, tc.x, err, tc.want)
		}
		if !slices.Equal(mean.Float64s(), tc.m.Vars()[3].Value.Float64s()) || count != tc.m.Vars()[5].Value.Item() {
			t.Errorf("%s: a refused input changed the running statistics", tc.m.Name)
		}
	}
	// Other sizes work where no module fixes one.
	if _, err := srm20.Forward(images(r, tensor.Float32, 2, 20)); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"srm-resnet50", Options{InputSize: 32}, "at least 2 pixels"},
		{"ge-:e16-resnet20", Options{}, "exceeds"},
		{"resnet50", Options{Shortcut: "A"}, "projection"},
		{"resnet20", Options{Shortcut: "C"}, "shortcut"},
		{"resnet20", Options{Classes: -1}, "class"},
		{"srm:foo-resnet20", Options{}, "pooling"},
		{"resnet21", Options{}, "unknown ResNet"},
	} {
		_, err := NewModel(tc.name, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: error %v, want one saying %q", tc.name, tc.o, err, tc.want)
		}
	}
}

// TestResNet20Learns takes a few SGD steps of SRM-ResNet-20 on one batch,
// the optimiser split by NoDecay as the official training is; the loss
// must fall and the gates must leave 0.5.
func TestResNet20Learns(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	m, err := NewModel("srm-resnet20", Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sgd := optim.NewSGD(m.Vars(), 0.05, 0.9, 1e-4, false)
	if n := len(sgd.Groups[1].Params); n != 3*len(m.Recalibrators()) {
		t.Errorf("%d NoDecay parameters, want cfc, bn.weight and bn.bias of each module", n)
	}
	x, labels := images(r, tensor.Float32, 8, 16), []int{0, 1, 2, 3, 4, 5, 6, 7}
	var first, last float64
	for step := 0; step < 6; step++ {
		sgd.ZeroGrad()
		logits, err := m.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := op.CrossEntropy(logits, labels)
		if err != nil {
			t.Fatal(err)
		}
		loss.Backward()
		sgd.Step()
		if step == 0 {
			first = loss.Item()
		}
		last = loss.Item()
	}
	if !(last < first) {
		t.Errorf("loss went from %v to %v", first, last)
	}
	if g := m.Recalibrators()[0].Module.Gates().At(0); g == 0.5 {
		t.Error("gates still 0.5 after training")
	}
}
