package gpucheck

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// CompareRuns writes, for cuda-check reports of the same GPU under
// different kernel choices (cuda/candidates.sh's, beside check.sh's), the
// fused operations' and ResNet-50 steps' median times side by side, each
// run's as a speed-up over the first's, and each run's failed checks: the
// table a default is chosen from.
func CompareRuns(w io.Writer, names []string, runs []*Report) error {
	if len(names) != len(runs) || len(runs) < 2 {
		return fmt.Errorf("gpucheck: compare needs two runs or more, one name each (%d runs, %d names)", len(runs), len(names))
	}
	row := func(label string, values []float64) {
		fmt.Fprintf(w, "%-30s", label)
		for i, v := range values {
			switch {
			case v == 0:
				fmt.Fprintf(w, " %18s", "-")
			case i == 0 || values[0] == 0:
				fmt.Fprintf(w, " %18.1f", v)
			default:
				fmt.Fprintf(w, " %10.1f (%4.2fx)", v, values[0]/v)
			}
		}
		fmt.Fprintln(w)
	}
	header := func(title string) {
		fmt.Fprintf(w, "== %s ==\n%-30s", title, "")
		for _, n := range names {
			fmt.Fprintf(w, " %18s", n)
		}
		fmt.Fprintln(w)
	}

	header("fused operations: median us, and the first run's over each")
	type key struct{ shape, op string }
	var keys []key
	times := map[key][]float64{}
	for i, r := range runs {
		if r.Report == nil {
			continue
		}
		for _, t := range r.Timings {
			k := key{t.Shape, t.Op}
			if times[k] == nil {
				keys = append(keys, k)
				times[k] = make([]float64, len(runs))
			}
			times[k][i] = t.MedianUS
		}
	}
	for _, k := range keys {
		row(k.shape+" "+k.op, times[k])
	}

	var kinds []string
	for _, r := range runs {
		for kind := range r.ResNet50 {
			if !slices.Contains(kinds, kind) {
				kinds = append(kinds, kind)
			}
		}
	}
	slices.Sort(kinds)
	// Minimums beside medians: a stretch of slow steps can move a run's
	// median by more than the kernels being compared do (docs/gpu).
	for _, stat := range []struct {
		name string
		of   func(StepTime) float64
	}{{"median", func(t StepTime) float64 { return t.MedianMS }}, {"minimum", func(t StepTime) float64 { return t.MinMS }}} {
		header("ResNet-50 training steps: " + stat.name + " ms, and the first run's over each")
		for _, kind := range kinds {
			ms := make([]float64, len(runs))
			for i, r := range runs {
				ms[i] = stat.of(r.ResNet50[kind])
			}
			row(kind, ms)
		}
	}

	failed := make([]string, len(runs))
	for i, r := range runs {
		failed[i] = fmt.Sprintf("%s %d", names[i], r.Failed())
	}
	fmt.Fprintf(w, "== checks over their limits: %s ==\n", strings.Join(failed, ", "))
	return nil
}
