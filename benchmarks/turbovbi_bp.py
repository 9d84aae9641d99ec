"""Benchmark: one Turbo-VBI Module-B round (BP over every layer's support grid) on LeNet-300-100 and LeNet-5-Caffe.

One round = `support_prior_logodds` on the support grid of each Linear/Conv2d weight, float32, 10 sweeps,
damping 0.5, with random unaries (logit π^e ~ N(0, 2²)); `mrf2d` (loopy BP) and `chain` (exact forward–backward
down each column of G). Prints a Markdown table of the best of `--repeat` runs per layer, and the round total.

    PYTHONPATH=src python benchmarks/turbovbi_bp.py [--repeat 5] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import functools
import time

import torch
from torch import nn

from sparsenets.grids import support_grid
from sparsenets.models.cnn import LeNet5
from sparsenets.models.mlp import MLP
from sparsenets.turbovbi.bp import support_prior_logodds

SUPPORTS = ("mrf2d", "chain")


def best_time(fn, repeat: int, device: torch.device) -> float:
    """Minimum wall time (s) of `fn` over `repeat` runs after one warm-up, synchronising CUDA."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def layer_grids(model: nn.Module, device: torch.device) -> list[tuple[str, torch.Tensor]]:
    """(name, random unary grid [H, W]) for each Linear/Conv2d weight of `model`."""
    g = torch.Generator().manual_seed(0)
    out = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            shape = support_grid(module.weight.detach()).shape
            out.append((name, (torch.randn(shape, generator=g) * 2).to(device)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    nets = {"LeNet-300-100": MLP(784, (300, 100), 10), "LeNet-5-Caffe": LeNet5()}
    print(
        f"device {device}, {args.threads} thread(s), float32, 10 sweeps, damping 0.5, best of {args.repeat}\n"
    )
    print("| net | layer | grid | " + " | ".join(f"{s} (ms)" for s in SUPPORTS) + " |")
    print("|---|---|---|" + "---|" * len(SUPPORTS))
    for net, model in nets.items():
        totals = dict.fromkeys(SUPPORTS, 0.0)
        for name, unary in layer_grids(model, device):
            times = {}
            for support in SUPPORTS:
                call = functools.partial(
                    support_prior_logodds, unary, support, 0.1, 0.1, sweeps=10, damping=0.5
                )
                times[support] = best_time(call, args.repeat, device)
                totals[support] += times[support]
            grid = "×".join(str(s) for s in unary.shape)
            print(
                f"| {net} | {name} | {grid} | " + " | ".join(f"{1e3 * times[s]:.1f}" for s in SUPPORTS) + " |"
            )
        print(
            f"| {net} | **one round** | | "
            + " | ".join(f"**{1e3 * totals[s]:.1f}**" for s in SUPPORTS)
            + " |"
        )


if __name__ == "__main__":
    main()
