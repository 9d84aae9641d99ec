"""Does the choice of kept counts move the latency speedup? Dense vs compacted CPU latency for chosen per-layer
counts: LeNet-5 at hand-picked (conv1, conv2, fc1) counts around the studied keep ratios, and VGG-16-BN (full
width) at keep ratios around the study's 0.4 with each layer's count rounded to a multiple of 1, 8 or 16 (the
vector width of the CPU's convolution kernels; Torch-Pruning's `round_to`; `sparsenets.optim.kept_count`).

Masks are top-k on the initial weights (latency depends on the shapes only); each pair is timed interleaved by
`sparsenets.compact.measure` at batch 64. Writes docs/benchmarks/compact-counts.md.

    PYTHONPATH=src python benchmarks/bench_compact_counts.py [--repeat 30] [--threads 1 2]
        [--vgg-cases 0.4:1 0.4:8 0.4:16 0.42:16 0.43:16 0.38:16 0.35:16 0.32:16]   (keep:round_to)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench_compact import masked_and_compact
from sparsenets.compact import measure
from sparsenets.models.cnn import VGG16_CFG, VGG16BN, LeNet5
from sparsenets.optim import kept_count

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
LENET_COUNTS = [  # (conv1 of 20, conv2 of 50, fc1 of 500)
    (10, 25, 250),
    (9, 22, 225),
    (8, 24, 224),
    (8, 24, 200),
    (8, 20, 200),
    (8, 20, 160),
    (8, 18, 175),
    (7, 18, 175),
    (8, 16, 176),
    (8, 16, 128),
    (6, 16, 160),
    (6, 15, 150),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--vgg-repeat", type=int, default=30)
    parser.add_argument(
        "--vgg-cases",
        nargs="*",
        default=["0.4:1", "0.4:8", "0.4:16", "0.42:16", "0.43:16", "0.38:16", "0.35:16", "0.32:16"],
    )
    args = parser.parse_args()
    cases = [("LeNet-5", list(c), LeNet5, args.repeat) for c in LENET_COUNTS]
    vgg_sizes = [int(v) for v in VGG16_CFG if v != "M"]
    for case in args.vgg_cases:
        keep, r = float(case.split(":")[0]), int(case.split(":")[1])
        counts = [kept_count(m, keep, r) for m in vgg_sizes]
        cases.append((f"VGG-16-BN, keep {keep:g}, round_to {r}", counts, VGG16BN, args.vgg_repeat))
    rows = []
    for name, counts, build, repeat in cases:
        torch.manual_seed(0)
        dense, small, diff = masked_and_compact(build(), list(counts))
        for threads in args.threads:
            torch.set_num_threads(threads)
            m = measure(dense, small, torch.randn(1, 1, 28, 28), batches=(64,), repeat=repeat)
            rows.append({"model": name, "counts": counts, "threads": threads, "diff": diff, **m})
            print(
                f"{name} {counts} {threads} thr: FLOPs ÷ {m['flops_reduction']:.2f}, b64 NCHW "
                f"{m['speedup_b64']:.2f}x, best {m['speedup_best_b64']:.2f}x",
                flush=True,
            )
    lines = [
        "## Compaction: kept counts and latency",
        "",
        "Written by `benchmarks/bench_compact_counts.py` (top-k masks on initial weights at the listed counts; "
        f"batch 64, median of {args.repeat} (LeNet) / {args.vgg_repeat} (VGG) forward "
        "passes, dense and compacted interleaved). Ratio = speedup ÷ FLOPs reduction; issue 3 asks ≥ 0.7.",
        "",
        "| model | kept counts | threads | FLOPs ÷ | NCHW × | NCHW ratio | best-layout × | best ratio | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = r["flops_reduction"]
        lines.append(
            f"| {r['model']} | {r['counts']} | {r['threads']} | {f:.2f} | {r['speedup_b64']:.2f} | {r['speedup_b64'] / f:.2f} "
            f"| {r['speedup_best_b64']:.2f} | {r['speedup_best_b64'] / f:.2f} | {r['diff']:.1e} |"
        )
    (DOCS / "compact-counts.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
