package cuda

import "testing"

// Strict FP32 skips tensor-op math and, while anything else works, the FFT
// and Winograd algorithms; TF32 takes the fastest of all.
func TestPickAlgo(t *testing.T) {
	perf := []convAlgoPerf{
		{Algo: 6, Time: 1}, // Winograd (forward)
		{Algo: 1, Time: 3, MathType: cudnnTensorOpMath},
		{Algo: 0, Time: 5},
		{Algo: 2, Time: 4, Status: 3}, // failed
	}
	for _, c := range []struct {
		name   string
		dir    convDir
		perf   []convAlgoPerf
		tf32   bool
		byTime bool
		want   int32
	}{
		{"tf32 fastest", convFwd, perf, true, true, 6},
		{"strict direct", convFwd, perf, false, true, 0},
		{"strict only winograd", convFwd, perf[:1], false, true, 6},
		{"heuristics first usable", convFwd, perf, false, false, 0},
		{"backward data enum", convBwdData, []convAlgoPerf{{Algo: 4, Time: 1}, {Algo: 6, Time: 2}}, false, true, 6},
	} {
		got := pickAlgo(c.dir, c.perf, convMode{tf32: c.tf32}, c.byTime)
		if got == nil || got.Algo != c.want {
			t.Errorf("%s: picked %+v, want algo %d", c.name, got, c.want)
		}
	}
	if pickAlgo(convFwd, perf[3:], convMode{}, true) != nil {
		t.Error("a failed result was picked")
	}
	// Deterministic mode takes the fastest deterministic result, and
	// nothing where none is.
	mixed := []convAlgoPerf{{Algo: 0, Time: 1}, {Algo: 1, Time: 3, Determinism: cudnnDeterministic}, {Algo: 3, Time: 2}}
	for _, m := range []convMode{{deterministic: true}, {tf32: true, deterministic: true}} {
		if got := pickAlgo(convBwdFilter, mixed, m, true); got == nil || got.Algo != 1 {
			t.Errorf("%+v: picked %+v, want the deterministic algo 1", m, got)
		}
		if got := pickAlgo(convBwdFilter, mixed[:1], m, true); got != nil {
			t.Errorf("%+v: picked the non-deterministic %+v", m, got)
		}
	}
	if got := pickAlgo(convBwdFilter, mixed, convMode{}, true); got == nil || got.Algo != 0 {
		t.Errorf("default mode: picked %+v, want the fastest, algo 0", got)
	}
}
