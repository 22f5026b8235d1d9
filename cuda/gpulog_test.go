package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPULog runs gpulog.sh (sourced by check.sh and candidates.sh) with a
// stand-in nvidia-smi that knows only the older name of the clock-reasons
// field: the log samples with that name until stopped. Without nvidia-smi
// it writes nothing and succeeds.
func TestGPULog(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	fake := `#!/bin/sh
case "$*" in *clocks_event_reasons.active*noheader*) exit 6;; *clocks_throttle_reasons.active*noheader*) exit 0;; esac
echo "args: $*"
while true; do echo sample; sleep 0.05; done
`
	if err := os.WriteFile(filepath.Join(bin, "nvidia-smi"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(path, log string) {
		t.Helper()
		cmd := exec.Command(bash, "-c", `. ./gpulog.sh; gpulog_start "$1"; sleep 0.3; gpulog_stop`, "gpulog", log)
		cmd.Env = append(os.Environ(), "PATH="+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpulog.sh: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	withSMI := filepath.Join(dir, "log.csv")
	run(bin+":"+os.Getenv("PATH"), withSMI)
	got, err := os.ReadFile(withSMI)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "args: --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 200\nsample\n") {
		t.Errorf("log:\n%s", got)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	// A PATH with sleep alone: a GPU machine's /usr/bin has nvidia-smi.
	bare := t.TempDir()
	if err := os.Symlink(sleep, filepath.Join(bare, "sleep")); err != nil {
		t.Fatal(err)
	}
	without := filepath.Join(dir, "none.csv")
	run(bare, without)
	if _, err := os.Stat(without); !os.IsNotExist(err) {
		t.Errorf("without nvidia-smi: %v", err)
	}
}
