#!/usr/bin/env python3
"""Times PyTorch's SRM and ResNet-50 training steps as srmlab cuda-check does.

The module is the official one (hyunjaelee410/style-based-recalibration-module,
models/recalibration_modules.py, SRMLayer), copied below unchanged but for
names. Each operation is timed as srmlab times its kernels: the median of
--reps runs after --warmup, each between two CUDA events after an untimed
copy through twice the L2 cache.
Operations: eval_fwd (BN on running statistics, no grad), train_fwd (BN on
batch statistics, autograd recording as in a training step) and
train_fwd_bwd (that forward and backward from a random dout), in eager mode
and under torch.compile (default mode, dynamic=False). Compiling costs tens
of seconds per (shape, operation), so compiles stop starting once
--compile-budget seconds have gone on them; what was left out is marked.

Then one whole training step of ResNet-50 (1000 classes, batch 64, 224x224
float32 NCHW input, cross-entropy, SGD lr 0.1, momentum 0.9, weight decay
1e-4), eager, for the plain network and its SRM, SE and GE-θ variants: the
PyTorch twins of srmlab's models (torchref/models.py, the definitions the
parity tests hold srmlab to; its ResNet has BasicBlocks only, so the
Bottleneck is added here, on the same recalibration modules, placement and
initialisation, and checked by parameter count against srmlab's), with
cudnn.benchmark on and PyTorch's default TF32 settings, which the output
states. A step is zero_grad, forward, loss,
backward and optimizer step; the median and minimum of --r50-steps steps
after --r50-warmup (cudnn.benchmark picks its algorithms in the first), timed
with CUDA events as above. The section stops starting kinds once
--r50-budget seconds have gone, and cuts the steps of a slow kind to fit.

Given --srmlab-json (srmlab cuda-check -json), prints the speed ratios, and
for ResNet-50 the step times side by side with SRM's overhead over the
plain network, against the targets (SRM-ResNet-50 step no slower than
PyTorch eager; SRM adds at most 3 % to the step). The ResNet-50 comparison
comes before torch.compile's part, so that a time limit hit there cannot
lose it. --cpu-smoke builds the four ResNet-50s and runs one small step of
each on the CPU, timing nothing: a check of this script without a GPU.
"""
import argparse
import importlib
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
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


def time_us(fn, warmup, reps, flush=None):
    """Median and minimum of reps runs, in microseconds: back to back with a
    CUDA event between runs, or, with flush, each run between its own two
    events after an untimed flush()."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    if flush is None:
        events = [torch.cuda.Event(enable_timing=True) for _ in range(reps + 1)]
        events[0].record()
        for i in range(reps):
            fn()
            events[i + 1].record()
        pairs = [(events[i], events[i + 1]) for i in range(reps)]
    else:
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
        for start, end in pairs:
            flush()
            start.record()
            fn()
            end.record()
    torch.cuda.synchronize()
    ts = [start.elapsed_time(end) * 1000 for start, end in pairs]
    return statistics.median(ts), min(ts)


def l2_flush():
    """A copy through twice the L2 cache, run untimed before each timed SRM
    operation as srmlab cuda-check does, so that no run starts on what the
    one before it left in L2 (a layer in a network reads what the layer
    before it wrote, not its own last input)."""
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 0) or 64 << 20
    src = torch.empty(2 * l2 // 4, device="cuda")
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


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


# ResNet-50 training steps.

R50_KINDS = ["plain", "srm", "se", "ge"]

# Parameters of srmlab's models at 224 px (srm/count_test.go, README):
# a twin that disagrees is not the network srmlab trains.
R50_PARAMS = {"plain": 25_557_032, "srm": 25_617_448, "se": 28_088_024, "ge": 31_121_704}


def torchref():
    """torchref/models.py, imported by path from the repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "torchref"))
    return importlib.import_module("models")


def bottleneck_resnet50(models, kind, size):
    """ResNet-50 on torchref's ResNet: torchvision's Bottleneck (stride in
    the 3x3, "v1.5", srmlab's default layout) with the module after bn3,
    before the shortcut addition, as models.BasicBlock places it."""

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride, downsample, kind, size):
            super().__init__()
            out = 4 * planes
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample
            self.rclb = models.recalibration(kind, out, size)

        def forward(self, x):
            residual = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            if self.rclb is not None:
                out = self.rclb(out)
            if self.downsample is not None:
                residual = self.downsample(x)
            return self.relu(out + residual)

    class ResNet50(models.ResNet):
        def __init__(self):
            super().__init__([3, 4, 6, 3], kind, 1000, size)
            self.fc = nn.Linear(2048, 1000)  # PyTorch's default init, as models.ResNet's fc

        def _make_layer(self, planes, blocks, stride, kind, size):
            downsample = None
            if stride != 1 or self.inplanes != 4 * planes:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, 4 * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(4 * planes),
                )
            layers = [Bottleneck(self.inplanes, planes, stride, downsample, kind, size)]
            self.inplanes = 4 * planes
            for _ in range(1, blocks):
                layers.append(Bottleneck(self.inplanes, planes, 1, None, kind, size))
            return nn.Sequential(*layers)

    return ResNet50()


def resnet50(models, kind, size):
    """The twin of srmlab's <kind>-resnet50 for size-px inputs, and where
    its definition comes from. models.build is used once torchref has a
    Bottleneck of its own; until then CIFAR's 6n+2 rule would make it build
    a CIFAR ResNet-50, not this one."""
    rclb = "" if kind == "plain" else kind
    if hasattr(models, "Bottleneck") and 50 in getattr(models, "IMAGENET", {}):
        return models.build(rclb + "-resnet50" if rclb else "resnet50", 1000, size), "torchref/models.py"
    return bottleneck_resnet50(models, rclb, size), "torchref/models.py + Bottleneck in cuda/bench_torch.py"


def r50_setup(models, kind, batch, size, device):
    """A model of the kind and a closure running one training step on it."""
    torch.manual_seed(0)
    model, source = resnet50(models, kind, size)
    model = model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(1000, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, step, source


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def tf32_settings():
    """The float32 precision settings in force: whether convolutions and
    matrix products may use TF32 (the allow_tf32 flags, which PyTorch 2.9+
    derives from its fp32_precision settings), and those settings where
    they exist ("none" there defers to the level above)."""
    s = {"tf32_convolutions": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
         "float32_matmul_precision": torch.get_float32_matmul_precision()}
    for name, obj in (("backends", torch.backends), ("matmul", torch.backends.cuda.matmul),
                      ("cudnn_conv", getattr(torch.backends.cudnn, "conv", None))):
        try:
            s[name + "_fp32_precision"] = obj.fp32_precision
        except (AttributeError, AssertionError):  # before 2.9; torch.backends.cuda.matmul asserts
            pass
    return s


def r50_settings(args):
    return {
        "model": "ResNet-50 (torchvision v1.5 layout), 1000 classes",
        "batch": 64, "size": 224, "dtype": "float32", "layout": "NCHW",
        "loss": "cross_entropy", "optimizer": "SGD lr 0.1 momentum 0.9 weight_decay 1e-4",
        "step": "zero_grad(set_to_none), forward, loss, backward, optimizer step",
        "mode": "eager", "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32": tf32_settings(), "warmup": args.r50_warmup, "steps": args.r50_steps,
        "timer": "CUDA events between back-to-back steps; median and min",
        "peak_mib": "torch.cuda.max_memory_allocated over the timed steps",
    }


def time_r50(args, results):
    """Times a training step of each kind into results[kind]; a kind that
    fails is reported and left out."""
    torch.backends.cudnn.benchmark = True
    settings = r50_settings(args)
    print(f"\n== ResNet-50 training step, eager: median of up to {args.r50_steps} after {args.r50_warmup} warm-up steps (CUDA events) ==")
    print("batch 64, 224x224 float32 NCHW, 1000 classes, cross-entropy, SGD lr 0.1 momentum 0.9 wd 1e-4, cudnn.benchmark on")
    print("precision (PyTorch's defaults): " + ", ".join(f"{k} {v}" for k, v in settings["tf32"].items()))
    try:
        models = torchref()
    except Exception as e:
        print(f"cannot import torchref/models.py: {e!r}")
        return settings
    print(f"{'kind':6} {'median ms':>10} {'min ms':>10} {'steps':>6} {'params':>11} {'peak GiB':>9}")
    t_start = time.time()
    for kind in args.r50_kinds.split(","):
        left = args.r50_budget - (time.time() - t_start)
        if left <= 0:
            print(f"{kind:6} skipped: --r50-budget spent")
            continue
        model = step = None
        try:
            model, step, settings["model_source"] = r50_setup(models, kind, 64, 224, "cuda")
            params = count_params(model)
            for _ in range(max(args.r50_warmup - 1, 0)):
                step()
            # The last warm-up step, alone, tells how many steps fit.
            torch.cuda.synchronize()
            t0 = time.time()
            step()
            torch.cuda.synchronize()
            took = time.time() - t0
            left = args.r50_budget - (time.time() - t_start)
            steps = max(3, min(args.r50_steps, int(left / max(took, 1e-6))))
            # After the warm-up, so that cudnn.benchmark's trial workspaces
            # do not count.
            torch.cuda.reset_peak_memory_stats()
            ts = time_us(step, 0, steps)
            results[kind] = {"median_ms": ts[0] / 1000, "min_ms": ts[1] / 1000, "steps": steps,
                             "params": params, "peak_mib": torch.cuda.max_memory_allocated() / 2**20}
            r = results[kind]
            mark = "" if R50_PARAMS.get(kind, params) == params else f"  (srmlab has {R50_PARAMS[kind]})"
            print(f"{kind:6} {r['median_ms']:10.2f} {r['min_ms']:10.2f} {steps:6d} {params:11d} {r['peak_mib'] / 1024:9.2f}{mark}")
        except Exception as e:  # keep going: one kind failing should not hide the rest
            print(f"{kind:6} failed: {e!r}")
        del model, step
        torch.cuda.empty_cache()
    settings["seconds"] = time.time() - t_start
    print(f"model: {settings.get('model_source', '-')}; section took {settings['seconds']:.0f} s")
    over = srm_overhead(results)
    if over is not None:
        print(f"SRM overhead over the plain network (median): {100 * over:+.1f} %")
    return settings


def srm_overhead(steps, key="median_ms"):
    """(srm - plain) / plain of the step times under key (the medians, or
    "min_ms": the minimums), or None."""
    try:
        return steps["srm"][key] / steps["plain"][key] - 1
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def srmlab_r50(doc):
    """srmlab's ResNet-50 step times from its cuda-check JSON, as {kind:
    {"median_ms", "min_ms"}}. The Go side may write Go's field names, so
    both spellings are read."""
    section = doc.get("resnet50", doc.get("ResNet50")) if isinstance(doc, dict) else None
    out = {}
    for kind, v in (section or {}).items():
        if not isinstance(v, dict):
            continue
        med, lo = v.get("median_ms", v.get("MedianMS")), v.get("min_ms", v.get("MinMS"))
        if isinstance(med, (int, float)) and med > 0:
            out[kind] = {"median_ms": float(med), "min_ms": float(lo) if isinstance(lo, (int, float)) else None}
    return out


def compare_r50(srmlab, eager):
    """Prints srmlab's ResNet-50 steps against PyTorch eager's, and the two
    targets; the targets are reported, not enforced."""
    print("\n== ResNet-50 training step: srmlab vs PyTorch eager (ratio = torch / srmlab: >1 means srmlab is faster) ==")
    print(f"{'kind':6} {'srmlab ms':>10} {'torch ms':>10} {'ratio':>7}")
    med = lambda steps, kind: steps.get(kind, {}).get("median_ms")
    fmt = lambda v: f"{v:10.2f}" if v else f"{'-':>10}"
    for kind in dict.fromkeys(R50_KINDS + list(srmlab) + list(eager)):
        a, b = med(srmlab, kind), med(eager, kind)
        print(f"{kind:6} {fmt(a)} {fmt(b)} {f'{b / a:.2f}x' if a and b else '-':>7}")
    # Both by medians and by minimums: srmlab's steps, plain and SRM alike,
    # sometimes run a stretch about 5 ms slower (docs/gpu), which moves a
    # median of 20 steps by more than the 3 % being judged.
    over, over_min = srm_overhead(srmlab), srm_overhead(srmlab, "min_ms")
    pct = lambda v: f"{100 * v:+.1f} %" if v is not None else "-"
    print(f"SRM overhead over the plain network (medians): srmlab {pct(over)}, PyTorch eager {pct(srm_overhead(eager))}")
    print(f"SRM overhead over the plain network (minimums): srmlab {pct(over_min)}, "
          f"PyTorch eager {pct(srm_overhead(eager, 'min_ms'))}")
    verdict = lambda ok: "unknown (missing times)" if ok is None else ("met" if ok else "NOT met")
    a, b = med(srmlab, "srm"), med(eager, "srm")
    print(f"target: SRM-ResNet-50 step no slower than PyTorch eager: {verdict(a <= b if a and b else None)}")
    within = lambda v: v <= 0.03 if v is not None else None
    print(f"target: SRM adds <= 3 % to a ResNet-50 training step: {verdict(within(over))} by medians, "
          f"{verdict(within(over_min))} by minimums")


def cpu_smoke():
    """Builds each ResNet-50, checks its parameter count at 224 px against
    srmlab's, and runs one training step at batch 2 on 64x64 inputs on the
    CPU. Nothing is timed."""
    models = torchref()
    ok = True
    for kind in R50_KINDS:
        model, source = resnet50(models, kind, 224)
        params = count_params(model)
        model, step, _ = r50_setup(models, kind, 2, 64, "cpu")
        before = [p.detach().clone() for p in model.parameters()]
        loss = step().item()
        moved = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
        good = params == R50_PARAMS[kind] and math.isfinite(loss) and moved == len(before)
        ok = ok and good
        print(f"{kind:6} params {params} (srmlab {R50_PARAMS[kind]}), one step: loss {loss:.4f}, "
              f"{moved}/{len(before)} tensors updated: {'ok' if good else 'FAILED'}")
    print(f"model: {source}")
    print("precision: " + ", ".join(f"{k} {v}" for k, v in tf32_settings().items()))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--compile-budget", type=float, default=70, help="seconds of torch.compile to start at most")
    ap.add_argument("--srmlab-json", help="srmlab cuda-check -json output, for ratios")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--resnet50", action=argparse.BooleanOptionalAction, default=True, help="time ResNet-50 training steps")
    ap.add_argument("--r50-steps", type=int, default=20, help="timed ResNet-50 steps per kind")
    ap.add_argument("--r50-warmup", type=int, default=5, help="untimed ResNet-50 steps first")
    ap.add_argument("--r50-kinds", default=",".join(R50_KINDS), help="of " + ",".join(R50_KINDS))
    ap.add_argument("--r50-budget", type=float, default=60, help="seconds of ResNet-50 steps to start at most")
    ap.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.r50_steps < 1 or args.r50_warmup < 1:
        ap.error("need --r50-steps >= 1 and --r50-warmup >= 1")
    if args.cpu_smoke:
        return cpu_smoke()
    shapes = args.shapes.split(",")

    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
    results = {}  # (shape, op, mode) -> (median, min)
    r50 = {}  # kind -> {"median_ms", "min_ms", ...}
    r50_settings = None

    def save():
        if args.json:
            rows = [{"shape": s, "op": o, "mode": m, "median_us": v[0], "min_us": v[1]} for (s, o, m), v in results.items()]
            doc = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "timings": rows}
            if r50_settings is not None:
                doc.update(resnet50=r50, resnet50_settings=r50_settings, resnet50_srm_overhead=srm_overhead(r50))
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1)

    flush = l2_flush()
    print(f"\n== PyTorch eager: median of {args.reps} after {args.warmup} warm-up runs (CUDA events, L2 flushed before each) ==")
    print(f"{'shape':14} {'op':14} {'median us':>10} {'min us':>10}")
    for shape in shapes:
        m, x, dout = setup(shape)
        for op in OPS:
            set_mode(m, op)
            try:
                results[(shape, op, "eager")] = time_us(make_op(m, op, x, dout), args.warmup, args.reps, flush)
                med, lo = results[(shape, op, "eager")]
                print(f"{shape:14} {op:14} {med:10.1f} {lo:10.1f}")
            except Exception as e:  # keep going: one failure should not hide the rest
                print(f"{shape:14} {op:14} failed: {e!r}")
        del m, x, dout
        torch.cuda.empty_cache()
    save()

    srmlab = None
    if args.srmlab_json:
        try:
            with open(args.srmlab_json) as f:
                srmlab = json.load(f)
        except (OSError, ValueError) as e:
            print(f"\nno srmlab timings to compare with ({e!r})")

    if args.resnet50:
        benchmark = torch.backends.cudnn.benchmark
        r50_settings = time_r50(args, r50)
        torch.backends.cudnn.benchmark = benchmark
        save()
        srmlab_steps = srmlab_r50(srmlab)
        if srmlab_steps:
            compare_r50(srmlab_steps, r50)
        elif srmlab is not None:
            print("\nsrmlab's JSON has no ResNet-50 step times to compare with")

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
            results[(shape, op, "compiled")] = time_us(fn, args.warmup, args.reps, flush)
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
        ours = {(t["Shape"], t["Op"]): t["MedianUS"] for t in srmlab["Timings"]}
    except (TypeError, KeyError) as e:
        print(f"\nno srmlab SRM timings to compare with ({e!r})")
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
