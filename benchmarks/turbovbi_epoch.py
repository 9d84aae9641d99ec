"""Cost of Turbo-VBI on the CPU: one training epoch vs a dense epoch, and one round's prior update (ρ/s-steps and
Module B's BP on every layer grid) vs one w-step epoch, on LeNet-300-100 and LeNet-5-Caffe with MNIST-shaped
inputs (batch 128, Adam). All ratios come from the same run, each figure the median of interleaved repeats.

An epoch is timed as the median optimizer step × steps per epoch (50k / 128 = 390): a full epoch of LeNet-5 takes
minutes on a shared 2-core machine, and a step is what the epoch repeats. The acceptance bounds of issue 28:
Turbo-VBI epoch ≤ 3× dense, BP ≤ 10 % of a round (a round = `epochs_per_round` w-step epochs + the update).

    PYTHONPATH=src python benchmarks/turbovbi_epoch.py [--threads 1] [--steps 12] [--support mrf2d chain]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.models.cnn import LeNet5
from sparsenets.models.lenet import LeNet300100
from sparsenets.turbovbi import TurboVBI, TurboVBIConfig, convert

STEPS_PER_EPOCH = 50000 // 128


def _step_fn(model: nn.Module, after_backward: Callable[[], None] | None) -> Callable[[], None]:
    """One Adam step on a fixed random MNIST-shaped batch; `after_backward()` adds the KL term's gradient, as
    `TurboVBICallback` does in training (closed form, no autograd graph)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if after_backward is not None:
            after_backward()
        opt.step()

    return step


def _median_s(fns: list[Callable[[], None]], repeats: int) -> list[float]:
    """Median seconds of each function, called in interleaved order so background load hits each alike."""
    for fn in fns:  # warm-up
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def bench(name: str, make: Callable[[], nn.Module], support: str, steps: int) -> dict[str, float]:
    """Dense step, Turbo-VBI step and one round's update (median seconds) and the derived ratios."""
    torch.manual_seed(0)
    dense = make()
    config = TurboVBIConfig(support=support)
    turbo = convert(make(), config)
    vbi = TurboVBI(turbo, config, n_train=50000, steps_per_epoch=STEPS_PER_EPOCH)
    dense_step, turbo_step = _step_fn(dense, None), _step_fn(turbo, vbi.add_kl_grad)
    d, t = _median_s([dense_step, turbo_step], steps)
    (update,) = _median_s([vbi.end_round], max(3, steps // 4))
    w_epoch = t * STEPS_PER_EPOCH
    round_s = config.epochs_per_round * w_epoch + update
    return {
        "dense_epoch_s": d * STEPS_PER_EPOCH,
        "turbo_epoch_s": w_epoch,
        "epoch_ratio": t / d,
        "update_s": update,
        "update_vs_epoch": update / w_epoch,
        "update_share_of_round": update / round_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model (median)")
    parser.add_argument("--support", nargs="+", default=["mrf2d"], choices=["mrf2d", "chain", "iid", "off"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, batch 128, {STEPS_PER_EPOCH} steps per epoch, Adam 1e-3")
    print("| net | support | dense epoch s | Turbo-VBI epoch s | ratio | round update s | update / w-epoch | "
          "update share of a round (2 epochs) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, make in (("LeNet-300-100", LeNet300100), ("LeNet-5-Caffe", LeNet5)):
        for support in args.support:
            r = bench(name, make, support, args.steps)
            print(f"| {name} | {support} | {r['dense_epoch_s']:.1f} | {r['turbo_epoch_s']:.1f} | "
                  f"{r['epoch_ratio']:.2f}× | {r['update_s']:.3f} | {r['update_vs_epoch']:.2%} | "
                  f"{r['update_share_of_round']:.2%} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
