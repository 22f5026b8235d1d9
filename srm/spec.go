package srm

import (
	"fmt"
	"strconv"
	"strings"
)

// Spec says which recalibration module to build and how; ParseSpec reads it
// from the text form used in model names (see the package documentation).
type Spec struct {
	// Kind is "srm", "se", "ge" (GE-θ), "ge-" (GE-θ⁻) or "ge+" (GE-θ⁺).
	Kind string
	// Pooling is SRM's style pooling (OfficialPooling by default).
	Pooling Pooling
	// Biased makes SRM's standard deviation use the population variance of
	// the paper's equation instead of the official code's unbiased one.
	Biased bool
	// MLP replaces SRM's CFC with an SE-style bottleneck over the flattened
	// style features, the paper's CFC-versus-MLP ablation.
	MLP bool
	// Reduction is the bottleneck ratio of SE, GE-θ⁺ and SRM's MLP (16 by
	// default); the hidden width is C/Reduction, at least 1.
	Reduction int
	// Extent is the side of the GE gather's window, which also is its
	// stride; 0 gathers over the whole feature map (the global extent of the
	// SRM paper's comparison).
	Extent int
}

// kinds lists the module kinds with the options each accepts.
var kinds = map[string]string{
	"srm": "pooling, biased, mlp, r<N>",
	"se":  "r<N>",
	"ge":  "e<N>",
	"ge-": "e<N>",
	"ge+": "e<N>, r<N>",
}

const defaultReduction = 16

// ParseSpec reads a module spec: a kind ("srm", "se", "ge", "ge-", "ge+")
// followed by ":"-separated options in any order: a "+"-joined pooling set
// (avg, std, max), "biased" and "mlp" for SRM, "r<N>" for a bottleneck
// reduction (SE, GE-θ⁺, SRM with mlp) and "e<N>" for a GE extent.
// Examples: "srm", "srm:avg+max", "srm:biased:mlp", "se:r8", "ge-:e4".
func ParseSpec(s string) (Spec, error) {
	parts := strings.Split(s, ":")
	sp := Spec{Kind: parts[0]}
	allowed, ok := kinds[sp.Kind]
	if !ok {
		return Spec{}, fmt.Errorf("srm: unknown module %q in %q (want srm, se, ge, ge- or ge+)", sp.Kind, s)
	}
	seen := map[byte]bool{}
	for _, o := range parts[1:] {
		var class byte // one option of each class
		var err error
		switch {
		case o == "biased" && sp.Kind == "srm":
			class, sp.Biased = 'b', true
		case o == "mlp" && sp.Kind == "srm":
			class, sp.MLP = 'm', true
		case strings.HasPrefix(o, "r") && (sp.Kind == "se" || sp.Kind == "ge+" || sp.Kind == "srm"):
			class = 'r'
			sp.Reduction, err = positive(o)
		case strings.HasPrefix(o, "e") && strings.HasPrefix(sp.Kind, "ge"):
			class = 'e'
			sp.Extent, err = positive(o)
		case sp.Kind == "srm":
			class = 'p'
			sp.Pooling, err = ParsePooling(o)
		default:
			return Spec{}, fmt.Errorf("srm: option %q does not apply to %s in %q (%s takes %s)", o, sp.Kind, s, sp.Kind, allowed)
		}
		if err != nil {
			return Spec{}, fmt.Errorf("srm: option %q in %q: %w", o, s, err)
		}
		if seen[class] {
			return Spec{}, fmt.Errorf("srm: option %q repeats a setting in %q", o, s)
		}
		seen[class] = true
	}
	if sp.Reduction != 0 && sp.Kind == "srm" && !sp.MLP {
		return Spec{}, fmt.Errorf("srm: %q: a reduction needs the mlp option (the CFC has none)", s)
	}
	if sp.Kind == "srm" && sp.Pooling == 0 {
		sp.Pooling = OfficialPooling
	}
	if sp.Reduction == 0 && sp.usesMLP() {
		sp.Reduction = defaultReduction
	}
	return sp, nil
}

// positive reads the number after an option's one-letter prefix.
func positive(o string) (int, error) {
	n, err := strconv.Atoi(o[1:])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("want a positive integer after %q", o[:1])
	}
	return n, nil
}

func (s Spec) usesMLP() bool { return s.Kind == "se" || s.Kind == "ge+" || s.MLP }

// String gives the canonical text of s, leaving out default settings, so
// that equal modules get equal model names.
func (s Spec) String() string {
	parts := []string{s.Kind}
	if s.Kind == "srm" && s.Pooling != OfficialPooling && s.Pooling != 0 {
		parts = append(parts, s.Pooling.String())
	}
	if s.Biased {
		parts = append(parts, "biased")
	}
	if s.MLP {
		parts = append(parts, "mlp")
	}
	if s.usesMLP() && s.Reduction != defaultReduction && s.Reduction != 0 {
		parts = append(parts, "r"+strconv.Itoa(s.Reduction))
	}
	if s.Extent != 0 {
		parts = append(parts, "e"+strconv.Itoa(s.Extent))
	}
	return strings.Join(parts, ":")
}

// hidden is the bottleneck width for c channels.
func (s Spec) hidden(c int) int { return max(1, c/s.Reduction) }
