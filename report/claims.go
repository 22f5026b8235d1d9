package report

import (
	"fmt"
	"strings"

	"github.com/srmlab/srmlab/analysis"
)

// Verdicts of a checked claim.
const (
	Held    = "held"
	NotHeld = "not held"
)

// ordering checks that the means of models, listed best first, do not
// increase, and says whether each step is larger than the seed spread
// (the larger sd of the two): "held" with two seeds and sd 3 points over a
// 1-point gap is no evidence, and the verdict says so.
func ordering(models []string, by map[string]analysis.Summary) (verdict, evidence string) {
	verdict = Held
	var parts []string
	within := false
	for i, m := range models {
		s, ok := by[m]
		if !ok {
			return "not run", "no runs of " + m
		}
		parts = append(parts, fmt.Sprintf("%s %s", m, meanSD(s.Mean, s.SD)))
		if i == 0 {
			continue
		}
		prev := by[models[i-1]]
		d := prev.Mean - s.Mean
		if d < 0 {
			verdict = NotHeld
		}
		if abs(d) <= max(prev.SD, s.SD) {
			within = true
		}
	}
	if within {
		verdict += " (within the seed spread)"
	}
	return verdict, strings.Join(parts, " ≥ ")
}

func verdict(ok bool) string {
	if ok {
		return Held
	}
	return NotHeld
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func meanSD(m, sd float64) string { return fmt.Sprintf("%.1f ± %.1f", m, sd) }
