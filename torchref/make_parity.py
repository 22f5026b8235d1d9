"""Writes the PyTorch side of srmlab's parity test.

usage: make_parity.py OUTDIR [SEED]

For each model of MODELS, in OUTDIR/<name>/:
  state_dict.pt  random float32 weights and BatchNorm statistics (torch.save)
  input.npy      a float32 input batch
  reference.pt   float64 tensors (torch.save): "labels", "eval_logits"; then,
                 after one training-mode forward and backward of
                 cross_entropy(logits, labels): "logits", "loss",
                 "grad.<param>" for every parameter and "state.<buffer>" for
                 every BatchNorm buffer as that forward left it
and OUTDIR/manifest.json lists the models with the options to build them.

The reference is computed in float64 from exactly the float32 weights and
input, so that it carries no rounding of its own. It is a separate file, not
.npy arrays, because weights.ReadNpy rounds to float32. PyTorch's own float32
run is measured against it too ("torch_float32_error" in the manifest, the
worst max|float32 - float64| / max|float64| over the gradients): float32
rounding can flip a ReLU whose input lies within rounding of zero, and on the
small maps of these models one flipped element moves a channel's gradient by
a percent or more, so float32 gradients are only comparable to this
reference loosely, for PyTorch as for srmlab.

Every parameter is randomised, SRM's cfc and all BatchNorm affine parameters
included, and the running statistics are those of a calibration batch,
perturbed, so that no gate sits at exactly 0.5 and eval mode differs from
training mode.
"""

import collections
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

# name, classes, input size, batch. ResNet-18 at 64 px ends on 2x2 maps, the
# smallest on which SRM's unbiased std is defined; GE's kernels are 16/8/4/2.
MODELS = [
    ("resnet18", 10, 64, 8),
    ("srm-resnet18", 10, 64, 8),
    ("se-resnet18", 10, 64, 8),
    ("ge-resnet18", 10, 64, 8),
    ("resnet20", 10, 32, 8),
    ("srm-resnet20", 10, 32, 8),
    ("se-resnet20", 10, 32, 8),
    ("ge-resnet20", 10, 32, 8),
]

# ZERO is the size, relative to the largest gradient, below which a float64
# gradient is rounding noise around zero; real gradients here are above 1e-4.
ZERO = 1e-10


def randomise(model, size, batch, g):
    """Random affine BN parameters and cfc, then running statistics from a
    calibration batch (cumulative average), perturbed."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5, generator=g)
                mod.bias.normal_(0, 0.2, generator=g)
            elif isinstance(mod, models.SRMLayer):
                mod.cfc.normal_(0, 1, generator=g)
        bns = [mod for mod in model.modules() if isinstance(mod, nn.BatchNorm2d)]
        for bn in bns:
            bn.momentum = None
        model.train()
        model(torch.randn(2 * batch, 3, size, size, generator=g))
        for bn in bns:
            bn.momentum = 0.1
            std = bn.running_var.sqrt()
            bn.running_mean.add_(0.1 * std * torch.randn(bn.running_mean.shape, generator=g))
            bn.running_var.mul_(torch.empty(bn.running_var.shape).uniform_(0.7, 1.3, generator=g))


def train_step(model, x, labels):
    """One training-mode forward and backward: logits, loss, gradients and
    the buffers the forward updated."""
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = collections.OrderedDict((k, p.grad) for k, p in model.named_parameters())
    return logits.detach(), loss.detach(), grads, collections.OrderedDict(model.named_buffers())


def rel_error(got, want):
    """max|got - want| / max|want|, the worst over every tensor. A tensor
    whose float64 gradient is zero up to rounding (GE's conv bias: the
    training-mode BN after it cancels any shift) is measured against the
    largest gradient of the model instead of its own rounding noise."""
    big = max(w.abs().max().item() for w in want.values())
    worst = 0.0
    for k, w in want.items():
        scale = w.abs().max().item()
        if scale < ZERO * big:
            scale = big
        worst = max(worst, (got[k].double() - w).abs().max().item() / scale)
    return worst


def make(outdir, name, classes, size, batch, seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = models.build(name, classes, size)
    randomise(model, size, batch, g)
    out = os.path.join(outdir, name)
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "state_dict.pt"))
    x = torch.randn(batch, 3, size, size, generator=g)
    labels = torch.randint(classes, (batch,), generator=g)
    np.save(os.path.join(out, "input.npy"), x.numpy().astype("<f4"))

    ref = collections.OrderedDict(labels=labels.double())
    model64 = copy.deepcopy(model).double()
    model64.eval()
    with torch.no_grad():
        ref["eval_logits"] = model64(x.double())
    logits, loss, grads, buffers = train_step(model64, x.double(), labels)
    ref["logits"], ref["loss"] = logits, loss
    for k, v in grads.items():
        ref["grad." + k] = v
    for k, v in buffers.items():
        ref["state." + k] = v
    torch.save(ref, os.path.join(out, "reference.pt"))

    err32 = rel_error(train_step(model, x, labels)[2], grads)
    return {"name": name, "classes": classes, "size": size, "batch": batch, "seed": seed,
            "torch_float32_error": err32}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    outdir = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) == 3 else 1
    torch.set_num_threads(1)  # the reference is small; leave the cores to Go
    manifest = [make(outdir, *m, seed=seed + i) for i, m in enumerate(MODELS)]
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump({"torch": torch.__version__, "models": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
