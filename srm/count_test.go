package srm

import (
	"fmt"
	"math"
	"testing"
)

// moduleCost is what one module adds to a block whose branch ends in d
// (C = d.c channels of k = d.h pixels square): its parameters, SRM 4C, SE
// C²/8 + 17C/16, GE-θ C·k² + 3C, and its MACs, passes over the C·k² map
// (SRM 4: avg, std twice, gate; SE, GE-θ and GE-θ⁻ 2: gather, gate) plus
// SRM's CFC (2C) and SE's bottleneck (C²/8).
func moduleCost(kind string, d dims) (params int, macs float64) {
	c, k := d.c, d.h
	h := max(1, c/16)
	bottleneck := 2*c*h + h + c
	plane := float64(c * k * k)
	switch kind {
	case "srm":
		return 4 * c, 4*plane + float64(2*c)
	case "se":
		return bottleneck, 2*plane + float64(2*c*h)
	case "ge":
		return c*k*k + 3*c, 2 * plane
	case "ge+":
		return c*k*k + 2*c + bottleneck, 2*plane + float64(2*c*h)
	case "ge-":
		return 0, 2 * plane
	}
	return 0, 0
}

// TestSizes checks the exact parameter counts of srm-facts.md (1000
// classes for ImageNet, 10 for CIFAR; they match the SRM paper's table),
// and that every module adds its per-block formula, in parameters and in
// MACs, to the plain ResNet built before it.
func TestSizes(t *testing.T) {
	type cost struct {
		params int
		macs   float64
	}
	plain := map[string]cost{} // by depth and shortcut
	for _, tc := range []struct {
		name     string
		shortcut string
		params   int // from srm-facts.md; 0 where it has none
	}{
		{"resnet50", "", 25_557_032},
		{"se-resnet50", "", 28_088_024},
		{"ge-resnet50", "", 31_121_704},
		{"srm-resnet50", "", 25_617_448},
		{"resnet101", "", 44_549_160},
		{"se-resnet101", "", 49_326_872},
		{"ge-resnet101", "", 53_578_024},
		{"srm-resnet101", "", 44_679_208},
		{"resnet20", "B", 272_474},
		{"resnet56", "B", 855_770},
		{"resnet56", "A", 853_018},
		{"resnet20", "A", 269_722},
		{"srm-resnet20", "A", 0},
		{"se-resnet20", "A", 0},
		{"ge-resnet20", "A", 0},
		{"ge+-resnet20", "A", 0},
		{"ge--resnet20", "A", 0},
	} {
		m, err := NewModel(tc.name, Options{Shortcut: tc.shortcut})
		if err != nil {
			t.Fatal(err)
		}
		got := cost{m.Params(), m.MACs()}
		if tc.params != 0 && got.params != tc.params {
			t.Errorf("%s %s: %d parameters, want %d", tc.name, tc.shortcut, got.params, tc.params)
		}
		t.Logf("%-13s %s %10d parameters %.4f GMACs", m.Name, m.Options.Shortcut, got.params, got.macs/1e9)
		key := fmt.Sprint(m.Depth, m.Options.Shortcut)
		if m.Spec.Kind == "" {
			plain[key] = got
			continue
		}
		want := plain[key]
		d, _ := m.net.stem(dims{3, m.Options.InputSize, m.Options.InputSize})
		for _, l := range m.net.layers {
			for _, blk := range l {
				d, _, _ = trace(blk, d)
				p, f := moduleCost(m.Spec.Kind, d)
				want.params += p
				want.macs += f
			}
		}
		if got != want {
			t.Errorf("%s %s: %d parameters and %.0f MACs, want %d and %.0f", tc.name, tc.shortcut, got.params, got.macs, want.params, want.macs)
		}
	}
}

// TestMACs checks the MACs of srm-facts.md to three decimals, in both
// layouts, and that a module costs the same in both.
func TestMACs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		gmacs, caffe float64
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
		if tc.name != "resnet50" {
			continue
		}
		srm, err := Count("srm-resnet50", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if srm.MACs-s.MACs != srm.CaffeMACs-s.CaffeMACs {
			t.Errorf("SRM's MACs differ between layouts: %v, %v", srm, s)
		}
		// The Caffe-layout model itself, which Count sizes as a twin.
		m, err := NewModel("srm-resnet50", Options{StrideIn1x1: true})
		if err != nil {
			t.Fatal(err)
		}
		if m.MACs() != srm.CaffeMACs || m.net.layers[1][0].(*block).convs[0].Stride != 2 {
			t.Errorf("StrideIn1x1 model: %.0f MACs, Count says %.0f", m.MACs(), srm.CaffeMACs)
		}
	}
}

func TestCountCIFAR(t *testing.T) {
	s, err := Count("resnet20", Options{})
	if err != nil {
		t.Fatal(err)
	}
	// He et al.'s ResNet-20 is about 41 MMACs at 32 px.
	if s.Params != 269_722 || s.CaffeMACs != 0 || math.Abs(s.MACs/1e6-40.6) > 0.5 {
		t.Errorf("resnet20: %+v", s)
	}
	// BasicBlock ImageNet models have one layout.
	if s, err := Count("resnet18", Options{}); err != nil || s.CaffeMACs != s.MACs || s.Params != 11_689_512 {
		t.Errorf("resnet18: %+v, %v", s, err)
	}
}

// TestCountResNet152 sizes the largest model, which must not take long:
// Count walks the built layers without running them.
func TestCountResNet152(t *testing.T) {
	s, err := Count("srm-resnet152", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Params != 60_192_808+4*(3*256+8*512+36*1024+3*2048) {
		t.Errorf("srm-resnet152: %+v", s)
	}
}
