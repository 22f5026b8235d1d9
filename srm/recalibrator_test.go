package srm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// variants lists every module form the package offers, each with an input
// (N, C, H, W) it is built for.
var variants = []struct {
	spec string
	size int // H = W
}{
	{"srm", 4},
	{"srm:avg", 4}, {"srm:std", 4}, {"srm:max", 4},
	{"srm:avg+max", 4}, {"srm:std+max", 4}, {"srm:avg+std+max", 4},
	{"srm:biased", 4}, {"srm:biased", 1},
	{"srm:mlp", 4}, {"srm:avg+max:mlp:r2", 4},
	{"se", 4}, {"se:r2", 4},
	{"ge", 4}, {"ge:e2", 5}, {"ge:e3", 4},
	{"ge-", 4}, {"ge-:e2", 5},
	{"ge+", 4}, {"ge+:e2", 5}, {"ge+:r2", 4},
}

// randomise gives every parameter and running statistic of m a random
// value, so that no gradient hides behind a zero init (SRM's cfc) or a
// unit one (BN).
func randomise(m nn.Module, r *rand.Rand) {
	for _, v := range m.Vars() {
		switch {
		case strings.HasSuffix(v.Name, "num_batches_tracked"):
		case strings.HasSuffix(v.Name, "running_var"):
			v.Value.FillUniform(r, 0.5, 2)
		default:
			v.Value.FillNormal(r, 0, 0.7)
		}
	}
}

func TestRecalibratorGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range variants {
		for _, training := range []bool{true, false} {
			m, err := NewRecalibrator(v.spec, 6, v.size, r)
			if err != nil {
				t.Fatalf("%s: %v", v.spec, err)
			}
			nn.Cast(m, tensor.Float64)
			randomise(m, r)
			m.SetTraining(training)
			x := gradcheck.Rand64(r, 3, 6, v.size, v.size)
			wrt := append([]*tensor.Tensor{x}, nn.Params(m)...)
			if err := gradcheck.Compare(func() *tensor.Tensor { return m.Forward(x) }, wrt, 0, 1e-5); err != nil {
				t.Errorf("%s training=%v: %v", v.spec, training, err)
			}
		}
	}
}

func TestRecalibratorGates(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, v := range variants {
		m, err := NewRecalibrator(v.spec, 6, v.size, r)
		if err != nil {
			t.Fatalf("%s: %v", v.spec, err)
		}
		if m.Gates() != nil {
			t.Errorf("%s: gates before any forward", v.spec)
		}
		x := tensor.New(tensor.Float32, 2, 6, v.size, v.size)
		x.FillNormal(r, 0, 1)
		y := m.Forward(x)
		g := m.Gates()
		if !tensor.SameShape(x, y) || g == nil || g.Dim(0) != 2 || g.Dim(1) != 6 {
			t.Fatalf("%s: output %v, gates %v", v.spec, y, g)
		}
		for i := 0; i < g.Len(); i++ {
			if a := g.At(i); !(a > 0 && a < 1) {
				t.Fatalf("%s: gate %v outside (0, 1)", v.spec, a)
			}
		}
	}
}

func TestSRMGatesStartAtOneHalf(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, training := range []bool{true, false} {
		m, _ := NewRecalibrator("srm", 8, 0, r)
		m.SetTraining(training)
		x := tensor.New(tensor.Float32, 4, 8, 5, 5)
		x.FillNormal(r, 1, 3)
		m.Forward(x)
		for i, g := range m.Gates().Float64s() {
			if g != 0.5 {
				t.Fatalf("training=%v: gate %d is %v, want exactly 0.5", training, i, g)
			}
		}
	}
}

func TestRecalibratorParams(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	// Per module with C channels on k x k maps: SRM 4C (cfc 2C, BN 2C), SE
	// C²/8 + 17C/16, GE-θ C·k² + 3C (kernel, bias, BN), GE-θ⁻ nothing.
	const c, k = 64, 7
	for _, tc := range []struct {
		spec string
		want int
	}{
		{"srm", 4 * c},
		{"srm:avg+std+max", 5 * c},
		{"srm:mlp", (2*c*c/16 + c/16) + (c/16*c + c) + 2*c},
		{"se", c*c/8 + 17*c/16},
		{"se:r8", 2*c*c/8 + c/8 + c},
		{"ge", c*k*k + 3*c},
		{"ge:e2", c*2*2 + 3*c},
		{"ge-", 0},
		{"ge+", c*k*k + 2*c + c*c/8 + 17*c/16},
	} {
		m, err := NewRecalibrator(tc.spec, c, k, r)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := nn.CountParams(m); got != tc.want {
			t.Errorf("%s: %d parameters, want %d", tc.spec, got, tc.want)
		}
	}
	// SE keeps at least one hidden unit: C = 8 gives Linear(8, 1), Linear(1, 8).
	if m, _ := NewRecalibrator("se", 8, 0, r); nn.CountParams(m) != 8+1+8+8 {
		t.Errorf("SE on 8 channels: %d parameters, want 25", nn.CountParams(m))
	}
}

func TestRecalibratorKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		spec    string
		keys    string
		noDecay string
	}{
		{"srm", "cfc bn.weight bn.bias bn.running_mean bn.running_var bn.num_batches_tracked", "cfc bn.weight bn.bias"},
		{"srm:mlp", "fc.0.weight fc.0.bias fc.2.weight fc.2.bias bn.weight bn.bias bn.running_mean bn.running_var bn.num_batches_tracked", "bn.weight bn.bias"},
		{"se", "fc.0.weight fc.0.bias fc.2.weight fc.2.bias", ""},
		{"ge", "conv.0.weight conv.0.bias conv.1.weight conv.1.bias conv.1.running_mean conv.1.running_var conv.1.num_batches_tracked", ""},
		{"ge+", "conv.0.weight conv.1.weight conv.1.bias conv.1.running_mean conv.1.running_var conv.1.num_batches_tracked fc.0.weight fc.0.bias fc.2.weight fc.2.bias", ""},
		{"ge-", "", ""},
	} {
		m, err := NewRecalibrator(tc.spec, 32, 7, r)
		if err != nil {
			t.Fatal(err)
		}
		var keys, noDecay []string
		for _, v := range m.Vars() {
			keys = append(keys, v.Name)
			if v.NoDecay {
				noDecay = append(noDecay, v.Name)
			}
		}
		if got := strings.Join(keys, " "); got != tc.keys {
			t.Errorf("%s keys:\n got %s\nwant %s", tc.spec, got, tc.keys)
		}
		if got := strings.Join(noDecay, " "); got != tc.noDecay {
			t.Errorf("%s NoDecay: got %q, want %q", tc.spec, got, tc.noDecay)
		}
	}
	m, _ := NewRecalibrator("srm", 32, 0, r)
	if s := m.(*SRM).CFC.Shape(); s[0] != 32 || s[1] != 2 {
		t.Errorf("cfc shape %v, want (32, 2)", s)
	}
	m, _ = NewRecalibrator("ge", 32, 7, r)
	if s := m.(*GE).Conv.Weight.Shape(); s[0] != 32 || s[1] != 1 || s[2] != 7 || s[3] != 7 {
		t.Errorf("GE-θ kernel %v, want (32, 1, 7, 7)", s)
	}
}

func TestRecalibratorErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		spec     string
		channels int
		size     int
		want     string
	}{
		{"cbam", 8, 4, "unknown module"},
		{"srm:avg+mean", 8, 4, "unknown pooling"},
		{"srm:r8", 8, 4, "needs the mlp option"},
		{"se:biased", 8, 4, "does not apply"},
		{"se:r0", 8, 4, "positive integer"},
		{"ge:e2:e4", 8, 4, "repeats"},
		{"ge", 8, 0, "feature-map size"},
		{"ge-:e8", 8, 4, "exceeds"},
		{"srm", 0, 4, "channels"},
	} {
		_, err := NewRecalibrator(tc.spec, tc.channels, tc.size, r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.spec, err, tc.want)
		}
	}
	// Forward misuse panics with a *tensor.ShapeError naming the problem.
	srm, _ := NewRecalibrator("srm", 4, 0, r)
	ge, _ := NewRecalibrator("ge", 4, 4, r)
	for _, tc := range []struct {
		m    Recalibrator
		x    *tensor.Tensor
		want string
	}{
		{srm, tensor.New(tensor.Float32, 2, 4, 1, 1), "at least 2 pixels"},
		{srm, tensor.New(tensor.Float32, 2, 4), "(N, C, H, W)"},
		{ge, tensor.New(tensor.Float32, 2, 4, 5, 5), "built for 4x4"},
	} {
		err := shapePanic(func() { tc.m.Forward(tc.x) })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.x, err, tc.want)
		}
	}
}

func TestSpecString(t *testing.T) {
	for in, want := range map[string]string{
		"srm":                 "srm",
		"srm:avg+std":         "srm",
		"srm:max+avg":         "srm:avg+max",
		"srm:mlp:biased:r16":  "srm:biased:mlp",
		"srm:mlp:r8:std+avg":  "srm:mlp:r8",
		"se:r16":              "se",
		"ge+:e4:r8":           "ge+:r8:e4",
		"ge-":                 "ge-",
		"srm:avg+std+max:mlp": "srm:avg+std+max:mlp",
	} {
		s, err := ParseSpec(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if s.String() != want {
			t.Errorf("ParseSpec(%q).String() = %q, want %q", in, s, want)
		}
		if again, _ := ParseSpec(s.String()); again != s {
			t.Errorf("%q does not round-trip: %+v, %+v", in, s, again)
		}
	}
}

// TestSRMReference recomputes SRM's training-mode output from its
// definition: t = [mean, std] per channel, z = Σ cfc·t, BN over the batch
// (biased batch variance, eps 1e-5), y = x·sigmoid(γ·ẑ + β).
func TestSRMReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const n, c, hw = 4, 3, 6
	m, _ := NewRecalibrator("srm", c, 0, r)
	nn.Cast(m, tensor.Float64)
	randomise(m, r)
	s := m.(*SRM)
	x := gradcheck.Rand64(r, n, c, 2, 3)
	y := m.Forward(x).F64()
	xs, w := x.F64(), s.CFC.F64()
	z := make([]float64, n*c)
	for i := range z {
		plane := xs[i*hw : (i+1)*hw]
		mean, sq := 0.0, 0.0
		for _, v := range plane {
			mean += v / hw
		}
		for _, v := range plane {
			sq += (v - mean) * (v - mean)
		}
		z[i] = w[i%c*2]*mean + w[i%c*2+1]*math.Sqrt(sq/(hw-1)+1e-5)
	}
	for ch := 0; ch < c; ch++ {
		mu, v := 0.0, 0.0
		for i := 0; i < n; i++ {
			mu += z[i*c+ch] / n
		}
		for i := 0; i < n; i++ {
			v += (z[i*c+ch] - mu) * (z[i*c+ch] - mu) / n
		}
		for i := 0; i < n; i++ {
			zh := (z[i*c+ch]-mu)/math.Sqrt(v+1e-5)*s.BN.Weight.At(ch) + s.BN.Bias.At(ch)
			g := 1 / (1 + math.Exp(-zh))
			for k := 0; k < hw; k++ {
				j := (i*c+ch)*hw + k
				if math.Abs(y[j]-xs[j]*g) > 1e-12 {
					t.Fatalf("element %d: %v, want %v", j, y[j], xs[j]*g)
				}
			}
		}
	}
}

// TestGEGlobalGatherIsDepthwiseConv checks that the CFC form of GE-θ's
// global gather is the official depthwise convolution.
func TestGEGlobalGatherIsDepthwiseConv(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	x, w, b := gradcheck.Rand64(r, 2, 4, 5, 5), gradcheck.Rand64(r, 4, 1, 5, 5), gradcheck.Rand64(r, 4)
	got, want := CFC(x, w, b).F64(), op.Conv2d(x, w, b, 1, 0, 4)
	if s := want.Shape(); s[2] != 1 || s[3] != 1 {
		t.Fatalf("conv output %v", s)
	}
	for i, v := range want.F64() {
		if math.Abs(got[i]-v) > 1e-12 {
			t.Fatalf("element %d: CFC %v, conv %v", i, got[i], v)
		}
	}
}
