package srm

import (
	"math"
	"testing"
)

// The exact trainable parameter counts of srm-facts.md (1000 classes for
// ImageNet, 10 for CIFAR), which match the SRM paper's table.
var paramTable = []struct {
	name     string
	shortcut string
	params   int
}{
	{"resnet50", "", 25_557_032},
	{"se-resnet50", "", 28_088_024},
	{"ge-resnet50", "", 31_121_704},
	{"srm-resnet50", "", 25_617_448},
	{"resnet101", "", 44_549_160},
	{"se-resnet101", "", 49_326_872},
	{"ge-resnet101", "", 53_578_024},
	{"srm-resnet101", "", 44_679_208},
	{"resnet20", "A", 269_722},
	{"resnet20", "B", 272_474},
	{"resnet56", "A", 853_018},
	{"resnet56", "B", 855_770},
}

func TestParamCounts(t *testing.T) {
	for _, tc := range paramTable {
		m, err := NewModel(tc.name, Options{Shortcut: tc.shortcut})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Params(); got != tc.params {
			t.Errorf("%s %s: %d parameters, want %d", tc.name, tc.shortcut, got, tc.params)
		}
	}
}

// TestBlockFormulas checks that each module adds its per-block formula in
// every block: SRM 4C, SE C²/8 + 17C/16, GE-θ C·k² + 3C for a k x k map.
func TestBlockFormulas(t *testing.T) {
	for _, depth := range []string{"resnet50", "resnet20"} {
		plain, err := NewModel(depth, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"srm", "se", "ge", "ge-", "ge+"} {
			m, err := NewModel(kind+"-"+depth, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := plain.Params()
			d, _ := m.net.stem(dims{3, m.Options.InputSize, m.Options.InputSize})
			for _, l := range m.net.layers {
				for _, blk := range l {
					d, _, _ = trace(blk, d)
					c, k := d.c, d.h
					switch kind {
					case "srm":
						want += 4 * c
					case "se", "ge+":
						h := max(1, c/16)
						want += 2*c*h + h + c
						if kind == "ge+" {
							want += c*k*k + 2*c
						}
					case "ge":
						want += c*k*k + 3*c
					}
				}
			}
			if got := m.Params(); got != want {
				t.Errorf("%s: %d parameters, want %d", m.Name, got, want)
			}
		}
	}
}

func TestMACs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		gmacs, caffe float64 // to three decimals
	}{
		{"resnet50", 4.089, 3.858},
		{"resnet101", 7.801, 7.570},
	} {
		s, err := Count(tc.name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if g := math.Round(s.MACs/1e6) / 1e3; g != tc.gmacs {
			t.Errorf("%s: %.4f GMACs, want %.3f", tc.name, s.MACs/1e9, tc.gmacs)
		}
		if g := math.Round(s.CaffeMACs/1e6) / 1e3; g != tc.caffe {
			t.Errorf("%s: %.4f Caffe GMACs, want %.3f", tc.name, s.CaffeMACs/1e9, tc.caffe)
		}
	}
}

// TestModuleMACs checks the module terms of the convention on ResNet-50,
// whose blocks see C·H·W = 802,816 (layer1), 401,408, 200,704 and 100,352
// elements: per block SRM costs 4 passes (avg, std twice, gate) plus 2C, SE
// 2 passes plus C²/8, GE-θ 2 passes.
func TestModuleMACs(t *testing.T) {
	plain, _ := Count("resnet50", Options{})
	passes := 3*802_816 + 4*401_408 + 6*200_704 + 3*100_352.0
	channels := 3*256 + 4*512 + 6*1024 + 3*2048.0
	squares := 3*256*256 + 4*512*512 + 6*1024*1024 + 3*2048*2048.0
	for _, tc := range []struct {
		name  string
		extra float64
	}{
		{"srm-resnet50", 4*passes + 2*channels},
		{"se-resnet50", 2*passes + squares/8},
		{"ge-resnet50", 2 * passes},
		{"ge--resnet50", 2 * passes},
	} {
		s, err := Count(tc.name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.MACs - plain.MACs; got != tc.extra {
			t.Errorf("%s: module MACs %.0f, want %.0f", tc.name, got, tc.extra)
		}
		if got := s.CaffeMACs - plain.CaffeMACs; got != tc.extra {
			t.Errorf("%s: Caffe-layout module MACs %.0f, want %.0f", tc.name, got, tc.extra)
		}
		t.Logf("%-13s %.4f GMACs, Caffe %.4f", tc.name, s.MACs/1e9, s.CaffeMACs/1e9)
	}
}

func TestCountCIFAR(t *testing.T) {
	s, err := Count("resnet20", Options{})
	if err != nil {
		t.Fatal(err)
	}
	// He et al.'s ResNet-20 is about 41 MMACs at 32 px (0.041 G).
	if s.Params != 269_722 || s.CaffeMACs != 0 || math.Abs(s.MACs/1e6-40.6) > 0.5 {
		t.Errorf("resnet20: %+v", s)
	}
}

func TestCountQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ResNet-152")
	}
	s, err := Count("srm-resnet152", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("srm-resnet152: %+v", s)
}
