package cuda

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNVRTC builds every kernel source with the NVRTC found on this machine
// (scripts/deps.sh installs Debian's; NVRTC needs no GPU), with a device's
// options for sm_90 (H100, H200). It is the compiler a GPU machine runs,
// where TestPTX's clang is a stand-in: its C++ front end and ptxas can
// refuse what clang accepts. From ptxas's report it checks that every
// kernel the Go code can launch (ptxcheck.sh --list) is in the CUBIN and
// that none spills registers to local memory (mayspill excepted), which
// clang's PTX cannot show: ptxas allocates the registers, and may spill a
// few bytes to fit a register budget that allows more blocks.
// SRMLAB_REQUIRE_NVRTC=1 (CI) makes a missing NVRTC a failure;
// SRMLAB_KERNEL_RESOURCES=FILE writes each kernel's registers, stack,
// spills and shared memory to FILE.
func TestNVRTC(t *testing.T) {
	rtc, err := loadNVRTC(hostEnv)
	if err != nil {
		if os.Getenv("SRMLAB_REQUIRE_NVRTC") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	major, minor, _ := rtc.Version()
	t.Logf("NVRTC %d.%d (%s)", major, minor, rtc.path)
	options := append((&kernelCache{arch: "sm_90"}).compileOptions(), "--ptxas-options=-v")
	files, err := fs.Glob(kernelFS, "kernels/*.cu")
	if err != nil {
		t.Fatal(err)
	}
	var all []kernelResources
	for _, f := range files {
		src, err := kernelFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "kernels/")
		start := time.Now()
		_, log, err := compileCUBIN(rtc, string(src), name, options)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		kernels, err := parsePtxasReport(name, log)
		if err != nil {
			t.Fatal(err)
		}
		most := slices.MaxFunc(kernels, func(a, b kernelResources) int { return a.regs - b.regs })
		t.Logf("%s: %d kernels in %.1f s, most registers %d (%s)", name, len(kernels), time.Since(start).Seconds(), most.regs, most.name)
		all = append(all, kernels...)
		// Every module also builds for the GPUs before sm_90 (A100), where
		// pdl_enter's instructions must drop out.
		if _, _, err := compileCUBIN(rtc, string(src), name, (&kernelCache{arch: "sm_80"}).compileOptions()); err != nil {
			t.Errorf("%s for sm_80: %v", name, err)
		}
	}
	built := map[string]bool{}
	for _, k := range all {
		built[k.name] = true
		if k.spillStores == 0 && k.spillLoads == 0 {
			continue
		}
		msg := fmt.Sprintf("%s: %s spills: %d bytes stored, %d loaded (%d registers)", k.file, k.name, k.spillStores, k.spillLoads, k.regs)
		if why, ok := mayspill[k.name]; ok {
			t.Logf("%s, allowed: %s", msg, why)
		} else {
			t.Error(msg)
		}
	}
	list, err := exec.Command("bash", "ptxcheck.sh", "--list").Output()
	if err != nil {
		t.Fatalf("ptxcheck.sh --list: %v", err)
	}
	for _, name := range strings.Fields(string(list)) {
		if !built[name] {
			t.Errorf("kernel %s is not in NVRTC's CUBIN", name)
		}
	}
	if path := os.Getenv("SRMLAB_KERNEL_RESOURCES"); path != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "# NVRTC %d.%d, sm_90: file kernel registers stack spill_stores spill_loads shared_bytes\n", major, minor)
		for _, k := range all {
			fmt.Fprintf(&b, "%s %s %d %d %d %d %d\n", k.file, k.name, k.regs, k.stack, k.spillStores, k.spillLoads, k.smem)
		}
		if err := writeAtomic(path, []byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
}

// mayspill names the kernels that may spill, and why.
var mayspill = map[string]string{
	// ptxas (11.8) spills around a loop of double exp; the kernel runs once a step on the logits.
	"nn_ce_forward": "the row's log-sum-exp in double",
}

// kernelResources is one kernel's entry in ptxas's report.
type kernelResources struct {
	file, name                    string
	regs, stack                   int
	spillStores, spillLoads, smem int
}

var (
	ptxasEntry = regexp.MustCompile(`Compiling entry function '(\w+)'`)
	ptxasFrame = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	ptxasUsed  = regexp.MustCompile(`Used (\d+) registers(?:, (\d+) bytes smem)?`)
)

// parsePtxasReport reads ptxas -v's lines: an entry's name, then its stack
// frame and spills, then its registers and static shared memory.
func parsePtxasReport(file, log string) ([]kernelResources, error) {
	var out []kernelResources
	var k *kernelResources
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	for _, line := range strings.Split(log, "\n") {
		switch {
		case ptxasEntry.MatchString(line):
			out = append(out, kernelResources{file: file, name: ptxasEntry.FindStringSubmatch(line)[1], regs: -1})
			k = &out[len(out)-1]
		case k == nil:
		case ptxasFrame.MatchString(line):
			m := ptxasFrame.FindStringSubmatch(line)
			k.stack, k.spillStores, k.spillLoads = atoi(m[1]), atoi(m[2]), atoi(m[3])
		case ptxasUsed.MatchString(line):
			m := ptxasUsed.FindStringSubmatch(line)
			k.regs, k.smem = atoi(m[1]), atoi(m[2])
			k = nil
		}
	}
	for _, k := range out {
		if k.regs < 0 {
			return nil, fmt.Errorf("%s: ptxas report has no register count for %s", file, k.name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: ptxas report lists no kernel", file)
	}
	return out, nil
}

// TestParsePtxasReport reads a report in ptxas -v's form: a called
// function's frame before any entry is no entry's, and an entry without
// its register count is an error.
func TestParsePtxasReport(t *testing.T) {
	const log = `ptxas info    : 0 bytes gmem
ptxas info    : Function properties for _Z6helperv
ptxas         .     16 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Compiling entry function 'k_one' for 'sm_90'
ptxas info    : Function properties for k_one
ptxas         .     48 bytes stack frame, 40 bytes spill stores, 44 bytes spill loads
ptxas info    : Used 126 registers, 8 bytes smem
ptxas info    : Compiling entry function 'k_two' for 'sm_90'
ptxas info    : Function properties for k_two
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers`
	got, err := parsePtxasReport("m.cu", log)
	want := []kernelResources{{"m.cu", "k_one", 126, 48, 40, 44, 8}, {"m.cu", "k_two", 32, 0, 0, 0, 0}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := parsePtxasReport("m.cu", log[:strings.LastIndex(log, "\n")]); err == nil || !strings.Contains(err.Error(), "k_two") {
		t.Errorf("an entry without registers: %v", err)
	}
	if _, err := parsePtxasReport("m.cu", "ptxas info    : 0 bytes gmem"); err == nil {
		t.Error("a report without entries accepted")
	}
}
