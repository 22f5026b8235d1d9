"""PyTorch speed peer of srmlab's benchmarks.

usage: torch_step.py --serve
       torch_step.py --memory MODEL [--threads N] [--steps K]

--serve reads one JSON request per line on standard input and answers each
with one JSON line: {"kind": "train" or "eval", "model": NAME, "threads": N,
"steps": K, "warmup": W, "device": "cpu" or "cuda", "batch": B} runs W
untimed then K timed steps of that model and answers {"ms": [K times]}, or
{"error": TEXT}. A training step is srmlab's (He et al.'s CIFAR recipe:
3x32x32 input, forward, cross-entropy, backward, SGD with momentum 0.9 and
weight decay 1e-4); an evaluation step is a forward pass in evaluation mode
without autograd. Models are built once (seed 0) and kept, so srmlab's bench
can alternate single steps with its own.

--memory runs K training steps (default 3) of MODEL in this fresh process
and prints {"mb": M}: the peak resident size during the steps minus the
resident size before them, in MiB (Linux: /proc/self/clear_refs and
VmHWM), the measure srmlab's bench takes of itself.

OpenBLAS, which Debian's torch calls for its matrix products (convolutions go
to oneDNN), picks its kernels when it loads; on machines that hide the
OSXSAVE cpuid bit it falls back to Prescott kernels. srmlab's blas package
then sets OPENBLAS_CORETYPE, so this peer does the same, before importing
torch, unless the environment already says which core to use.
"""

import argparse
import json
import os
import sys
import time


def choose_coretype():
    """SkylakeX with AVX-512 F/BW/VL/DQ, Haswell with AVX2 and FMA, as
    srmlab's blas.chooseCoreType."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return
    flags = set(flags)
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif {"avx2", "fma"} <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"


choose_coretype()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


class Step:
    """One model with a fixed random batch and its optimiser."""

    def __init__(self, name, device="cpu", batch=128, size=32):
        torch.manual_seed(0)
        self.device = device
        self.model = models.build(name, 10, size).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        self.x = torch.randn(batch, 3, size, size).to(device)
        self.y = torch.randint(10, (batch,)).to(device)

    def train(self):
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        loss.item()  # waits for a GPU, as srmlab's step does

    def eval(self):
        self.model.eval()
        with torch.no_grad():
            self.model(self.x).sum().item()

    def times(self, kind, warmup, steps):
        run = self.train if kind == "train" else self.eval
        out = []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            run()
            if i >= warmup:
                out.append((time.perf_counter() - t0) * 1e3)
        return out


def serve():
    steps = {}
    for line in sys.stdin:
        try:
            r = json.loads(line)
            if r.get("kind") not in ("train", "eval"):
                raise ValueError(f"kind {r.get('kind')!r}, want train or eval")
            torch.set_num_threads(int(r.get("threads", 2)))
            key = (r["model"], r.get("device", "cpu"), int(r.get("batch", 128)))
            if key not in steps:
                steps[key] = Step(*key)
            ms = steps[key].times(r["kind"], int(r.get("warmup", 0)), int(r["steps"]))
            print(json.dumps({"ms": ms}), flush=True)
        except Exception as e:  # the caller reports it with the request
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


def status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))


def memory(name, threads, steps):
    torch.set_num_threads(threads)
    s = Step(name)
    base = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    s.times("train", 0, steps)
    print(json.dumps({"mb": (status_kib("VmHWM") - base) / 1024}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", action="store_true")
    p.add_argument("--memory", metavar="MODEL")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    if a.serve:
        serve()
    elif a.memory:
        if a.threads < 1 or a.steps < 1:
            p.error("need --threads >= 1 and --steps >= 1")
        memory(a.memory, a.threads, a.steps)
    else:
        p.error("give --serve or --memory MODEL")


if __name__ == "__main__":
    main()
