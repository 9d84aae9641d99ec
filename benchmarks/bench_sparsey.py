"""Sparsey speed: time per item as storage grows, and batched vs per-item recognition (one CPU thread).

Writes docs/benchmarks/sparsey.md and docs/benchmarks/sparsey-*.png. Run:
    PYTHONPATH=src python benchmarks/bench_sparsey.py [--items 5000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from sparsenets.sdr import LevelSpec, SparseyNet, UpperLevel
from sparsenets.sdr.patterns import random_patterns

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def models() -> dict[str, tuple[SparseyNet, int, int]]:
    """Name → (fresh model, input size, active bits)."""
    return {
        "single mac 12×12, Q=K=10": (SparseyNet.single_mac(144, 10, 10, freeze_threshold=None), 144, 18),
        "2-level 28×28 (64 L1 macs 8×8, L2 16×16)": (
            SparseyNet.image_hierarchy(
                28,
                28,
                LevelSpec(8, 8, (0.0, 1.0)),
                7,
                3,
                [UpperLevel(LevelSpec(16, 16, (0.0, 1.0)))],
                freeze_threshold=None,
            ),
            784,
            60,
        ),
    }


def time_per_item(net: SparseyNet, x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Seconds per single-item learn and recognise call, in storage order."""
    learn, rec = [], []
    for i in range(len(x)):
        t0 = time.perf_counter()
        net.learn(x[i : i + 1])
        t1 = time.perf_counter()
        net.recognise(x[i : i + 1])
        rec.append(time.perf_counter() - t1)
        learn.append(t1 - t0)
    return learn, rec


def batch_vs_single(net: SparseyNet, x: torch.Tensor, sizes: tuple[int, ...]) -> dict[int, float]:
    """Recognised items per second for each batch size (1 = per-item loop)."""
    out = {}
    for b in sizes:
        n = max(b, min(len(x), 20 * b))
        t0 = time.perf_counter()
        for i in range(0, n, b):
            net.recognise(x[i : i + b], batch_size=b)
        out[b] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [
        "## Sparsey (Code Selection Algorithm)",
        "",
        f"One CPU thread ({platform.processor() or platform.machine()}), torch {torch.__version__}; "
        f"`PYTHONPATH=src python benchmarks/bench_sparsey.py --items {args.items}`. Learning stores one item per "
        "call (it is sequential by nature); recognition is batched over inputs and macs.",
        "",
        "| model | learn µs/item (first decile) | (last decile) | ratio | recognise µs/item per-item | "
        "batch 256 | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, (net, n, a) in models().items():
        x = random_patterns(args.items, n, a, gen)
        learn, rec = time_per_item(net, x)
        d = len(learn) // 10
        first, last = statistics.median(learn[:d]), statistics.median(learn[-d:])
        thr = batch_vs_single(net, x, (1, 16, 256, 1024))
        lines.append(
            f"| {name} | {1e6 * first:.0f} | {1e6 * last:.0f} | {last / first:.2f} | {1e6 / thr[1]:.0f} | "
            f"{1e6 / thr[256]:.1f} | {thr[256] / thr[1]:.0f}× |"
        )
        k = max(1, len(learn) // 50)
        xs = list(range(0, len(learn), k))
        axes[0].plot(xs, [1e6 * statistics.median(learn[i : i + k]) for i in xs], label=f"{name}: learn")
        axes[0].plot(
            xs, [1e6 * statistics.median(rec[i : i + k]) for i in xs], ls="--", label=f"{name}: recognise"
        )
        axes[1].plot(list(thr), list(thr.values()), marker="o", label=name)
    axes[0].set(
        xlabel="items stored",
        ylabel="µs per item (median of bins)",
        title="time per item vs storage",
        ylim=(0, None),
    )
    axes[0].legend(fontsize=7)
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="recognition batch size",
        ylabel="items / s",
        title="batched recognition",
    )
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "sparsey-time.png", dpi=110)
    lines += ["", "![time per item and batch throughput](sparsey-time.png)", ""]
    (OUT / "sparsey.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
