#!/usr/bin/env python3
"""Times PyTorch's SRM on the shapes srmlab cuda-check times, for cuda/check.sh.

The module is the official one (hyunjaelee410/style-based-recalibration-module,
models/recalibration_modules.py, SRMLayer), copied below unchanged but for
names. Each operation is timed as srmlab times its kernels: runs back to back
with a CUDA event between runs, the median of --reps after --warmup runs.
Operations: eval_fwd (BN on running statistics, no grad), train_fwd (BN on
batch statistics, autograd recording as in a training step) and
train_fwd_bwd (that forward and backward from a random dout), in eager mode
and under torch.compile (default mode, dynamic=False). Compiling costs tens
of seconds per (shape, operation), so compiles stop starting once
--compile-budget seconds have gone on them; what was left out is marked.
Given --srmlab-json (srmlab cuda-check -json), prints the speed ratios.
"""
import argparse
import importlib
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
from torch.nn.parameter import Parameter


class SRMLayer(nn.Module):
    def __init__(self, channel):
        super(SRMLayer, self).__init__()

        self.cfc = Parameter(torch.Tensor(channel, 2))
        self.cfc.data.fill_(0)

        self.bn = nn.BatchNorm2d(channel)
        self.activation = nn.Sigmoid()

        setattr(self.cfc, 'srm_param', True)
        setattr(self.bn.weight, 'srm_param', True)
        setattr(self.bn.bias, 'srm_param', True)

    def _style_pooling(self, x, eps=1e-5):
        N, C, _, _ = x.size()

        channel_mean = x.view(N, C, -1).mean(dim=2, keepdim=True)
        channel_var = x.view(N, C, -1).var(dim=2, keepdim=True) + eps
        channel_std = channel_var.sqrt()

        t = torch.cat((channel_mean, channel_std), dim=2)
        return t

    def _style_integration(self, t):
        z = t * self.cfc[None, :, :]  # B x C x 2
        z = torch.sum(z, dim=2)[:, :, None, None]  # B x C x 1 x 1

        z_hat = self.bn(z)
        g = self.activation(z_hat)

        return g

    def forward(self, x):
        # B x C x 2
        t = self._style_pooling(x)

        # B x C x 1 x 1
        g = self._style_integration(t)

        return x * g


SHAPES = ["64x256x56x56", "64x512x28x28", "64x1024x14x14", "64x2048x7x7", "128x64x32x32"]
OPS = ["eval_fwd", "train_fwd", "train_fwd_bwd"]


def time_us(fn, warmup, reps):
    """Median and minimum of reps back-to-back runs, in microseconds."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    events = [torch.cuda.Event(enable_timing=True) for _ in range(reps + 1)]
    events[0].record()
    for i in range(reps):
        fn()
        events[i + 1].record()
    torch.cuda.synchronize()
    ts = [events[i].elapsed_time(events[i + 1]) * 1000 for i in range(reps)]
    return statistics.median(ts), min(ts)


def make_op(module, op, x, dout):
    """A closure running one operation on module (eager or compiled)."""
    if op == "eval_fwd":
        def run():
            with torch.no_grad():
                module(x)
        return run
    if op == "train_fwd":
        def run():
            module(x)
        return run

    def run():
        x.grad = None
        for p in module.parameters():
            p.grad = None
        module(x).backward(dout)
    return run


def setup(shape):
    n, c, h, w = (int(v) for v in shape.split("x"))
    torch.manual_seed(0)
    m = SRMLayer(c).cuda()
    with torch.no_grad():
        m.cfc.normal_()  # random, so that gates vary as in a trained model
    x = (4 * torch.rand(n, c, h, w, device="cuda") - 2).requires_grad_(True)
    dout = torch.randn(n, c, h, w, device="cuda")
    return m, x, dout


def set_mode(m, op):
    m.train(op != "eval_fwd")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--compile-budget", type=float, default=70, help="seconds of torch.compile to start at most")
    ap.add_argument("--srmlab-json", help="srmlab cuda-check -json output, for ratios")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    shapes = args.shapes.split(",")

    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
    results = {}  # (shape, op, mode) -> (median, min)

    def save():
        if args.json:
            rows = [{"shape": s, "op": o, "mode": m, "median_us": v[0], "min_us": v[1]} for (s, o, m), v in results.items()]
            with open(args.json, "w") as f:
                json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "timings": rows}, f, indent=1)

    print(f"\n== PyTorch eager: median of {args.reps} after {args.warmup} warm-up runs (CUDA events) ==")
    print(f"{'shape':14} {'op':14} {'median us':>10} {'min us':>10}")
    for shape in shapes:
        m, x, dout = setup(shape)
        for op in OPS:
            set_mode(m, op)
            try:
                results[(shape, op, "eager")] = time_us(make_op(m, op, x, dout), args.warmup, args.reps)
                med, lo = results[(shape, op, "eager")]
                print(f"{shape:14} {op:14} {med:10.1f} {lo:10.1f}")
            except Exception as e:  # keep going: one failure should not hide the rest
                print(f"{shape:14} {op:14} failed: {e!r}")
        del m, x, dout
        torch.cuda.empty_cache()
    save()

    print(f"\n== torch.compile (default mode, dynamic=False), compiles started within {args.compile_budget:.0f} s ==")
    print(f"{'shape':14} {'op':14} {'median us':>10} {'min us':>10} {'compile s':>10}")
    try:  # one recompile per shape and mode: raise dynamo's limit on them
        dynamo = importlib.import_module("torch._dynamo")
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(dynamo.config, name):
                setattr(dynamo.config, name, 64)
    except ImportError as e:
        print(f"no torch._dynamo: {e!r}")
    # Most telling first, in case the budget runs out: training
    # forward+backward on the largest ImageNet shape and on the CIFAR
    # shape, both forward passes on the largest, then the rest.
    first, last = shapes[0], shapes[-1]
    order = [(first, "train_fwd_bwd"), (last, "train_fwd_bwd"), (first, "train_fwd"), (first, "eval_fwd")]
    order += [(s, "train_fwd_bwd") for s in shapes] + [(s, o) for s in shapes for o in ("train_fwd", "eval_fwd")]
    order = list(dict.fromkeys(order))
    spent = 0.0
    for shape, op in order:
        if spent >= args.compile_budget:
            print(f"{shape:14} {op:14} skipped: compile budget spent")
            continue
        m, x, dout = setup(shape)
        set_mode(m, op)
        t0 = time.time()
        try:
            mc = torch.compile(m, dynamic=False)
            fn = make_op(mc, op, x, dout)
            fn()
            torch.cuda.synchronize()
            took = time.time() - t0
            results[(shape, op, "compiled")] = time_us(fn, args.warmup, args.reps)
            med, lo = results[(shape, op, "compiled")]
            print(f"{shape:14} {op:14} {med:10.1f} {lo:10.1f} {took:10.1f}")
        except Exception as e:
            print(f"{shape:14} {op:14} compile failed: {e!r}")
        spent += time.time() - t0
        del m, x, dout
        torch.cuda.empty_cache()
        save()

    if not args.srmlab_json:
        return 0
    try:
        with open(args.srmlab_json) as f:
            ours = {(t["Shape"], t["Op"]): t["MedianUS"] for t in json.load(f)["Timings"]}
    except (OSError, ValueError, KeyError) as e:
        print(f"\nno srmlab timings to compare with ({e!r})")
        return 1
    print("\n== speed-up of srmlab's fused kernels (PyTorch time / srmlab time) ==")
    print(f"{'shape':14} {'op':14} {'srmlab us':>10} {'eager us':>10} {'compiled us':>12} {'vs eager':>9} {'vs compiled':>12}")
    for shape in shapes:
        for op in OPS:
            mine = ours.get((shape, op))
            eager = results.get((shape, op, "eager"), (None,))[0]
            comp = results.get((shape, op, "compiled"), (None,))[0]
            fmt = lambda v, w: f"{v:{w}.1f}" if v else f"{'-':>{w}}"
            ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
            print(f"{shape:14} {op:14} {fmt(mine, 10)} {fmt(eager, 10)} {fmt(comp, 12)} {ratio(eager, mine):>9} {ratio(comp, mine):>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
