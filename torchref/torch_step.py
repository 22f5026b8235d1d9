"""PyTorch speed peer of srmlab's training-step benchmark.

usage: torch_step.py [--threads N] [--warmup W] [--steps K] [MODEL ...]

Times one CIFAR training step (batch 128, 3x32x32 input, forward,
cross-entropy, backward, SGD with momentum 0.9 and weight decay 1e-4) of each
MODEL (default: resnet20 srm-resnet20) with torch.set_num_threads(N)
(default 2), W untimed steps (default 3) then the median of K (default 10),
and prints one JSON object {model: milliseconds}.

OpenBLAS, which Debian's torch calls for its matrix products (convolutions go
to oneDNN), picks its kernels when it loads; on machines that hide the
OSXSAVE cpuid bit it falls back to Prescott kernels. srmlab's blas package
then sets OPENBLAS_CORETYPE, so this peer does the same, before importing
torch, unless the environment already says which core to use.
"""

import argparse
import json
import os
import statistics
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


def time_step(name, warmup, steps, device="cpu", batch=128, size=32):
    torch.manual_seed(0)
    model = models.build(name, 10, size).to(device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size).to(device)
    y = torch.randint(10, (batch,)).to(device)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # waits for a GPU, as srmlab's step does
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("models", nargs="*", default=["resnet20", "srm-resnet20"])
    a = p.parse_args()
    if a.threads < 1 or a.warmup < 0 or a.steps < 1:
        p.error("need --threads >= 1, --warmup >= 0, --steps >= 1")
    torch.set_num_threads(a.threads)
    if a.device != "cpu":
        torch.backends.cudnn.benchmark = True
    print(json.dumps({m: round(time_step(m, a.warmup, a.steps, a.device), 3) for m in a.models}))


if __name__ == "__main__":
    main()
