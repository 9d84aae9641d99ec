"""Where the batch-64 CPU time of a dense and a compacted model goes, by kind of operation.

The FLOPs count covers convolutions and linear layers only; pooling, BatchNorm and ReLU cost time in proportion to
the activations, which shrink with the kept channels (keep¹), not with the kept weights (≈ keep²). This benchmark
profiles both models of `bench_compact.py` (same top-k masks at the study's keep ratios) in NCHW and in
channels-last and splits each forward pass into kinds of operations, so the gap between the latency speedup and
the FLOPs reduction can be read off per kind. Writes docs/benchmarks/compact-anatomy.md.

    PYTHONPATH=src python benchmarks/bench_compact_anatomy.py [--repeat 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from bench_compact import masked_and_compact
from sparsenets.compact import count_flops
from sparsenets.models.cnn import VGG16BN, LeNet5

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
KINDS = ("conv", "linear", "pool", "batchnorm", "relu", "other")


def kind_of(op: str) -> str:
    """The kind of an aten operator name (its self time is charged to that kind)."""
    name = op.lower()
    for kind, keys in (
        ("conv", ("conv",)),
        ("linear", ("addmm", "linear", "::mm", "matmul")),
        ("pool", ("pool",)),
        ("batchnorm", ("batch_norm",)),
        ("relu", ("relu", "clamp")),
    ):
        if any(k in name for k in keys):
            return kind
    return "other"


def anatomy(model: torch.nn.Module, x: torch.Tensor, repeat: int) -> dict[str, float]:
    """Self CPU time per forward pass (ms) by kind of operation, and the total.

    Args:
        model: an eval-mode module, already in the layout to time.
        x: (batch, C, H, W) input in the same layout.
        repeat: profiled forward passes (after 3 warm-up passes).
    """
    with torch.no_grad():
        for _ in range(3):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeat):
                model(x)
    ms: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        if ev.key.startswith("aten::"):
            ms[kind_of(ev.key)] += ev.self_cpu_time_total / 1e3 / repeat
    ms["total"] = sum(ms[k] for k in KINDS)
    return dict(ms)


def strided_max(x: torch.Tensor) -> torch.Tensor:
    """2×2, stride-2 max pooling as three elementwise maxima over strided views (equal to F.max_pool2d(x, 2))."""
    a = torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
    return torch.maximum(a, torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]))


def pool_rows(repeat: int) -> list[dict]:
    """NCHW max_pool2d against an equal strided maximum on LeNet's pooling inputs (batch 64), median ms."""
    from torch.nn.functional import max_pool2d

    rows = []
    for c, h in ((20, 24), (9, 24), (50, 8), (22, 8)):
        x = torch.randn(64, c, h, h)
        if not torch.equal(max_pool2d(x, 2), strided_max(x)):
            raise AssertionError("the strided maximum must equal max_pool2d")
        ms = {}
        for name, fn in (("max_pool2d", lambda t: max_pool2d(t, 2)), ("strided", strided_max)):
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn(x)
                times.append(time.perf_counter() - t0)
            ms[name] = 1e3 * statistics.median(times)
        rows.append({"shape": f"64×{c}×{h}×{h}", **ms})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lenet-keeps", type=float, nargs="+", default=[0.25, 0.45])
    parser.add_argument("--vgg-widths", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cases = [("LeNet-5", 1.0, keep, LeNet5()) for keep in args.lenet_keeps]
    cases += [("VGG-16-BN", w, 0.4, VGG16BN(width=w)) for w in args.vgg_widths]
    rows = []
    for name, width, keep, model in cases:
        dense, small, _ = masked_and_compact(model, keep)
        flops = count_flops(dense, torch.randn(1, 1, 28, 28)) / count_flops(small, torch.randn(1, 1, 28, 28))
        for layout, fmt in (("NCHW", torch.contiguous_format), ("channels-last", torch.channels_last)):
            x = torch.randn(64, 1, 28, 28).contiguous(memory_format=fmt)
            d, s = (anatomy(m.to(memory_format=fmt), x, args.repeat) for m in (dense, small))
            rows.append(
                {
                    "model": name,
                    "width": width,
                    "keep": keep,
                    "layout": layout,
                    "flops": flops,
                    "d": d,
                    "s": s,
                }
            )
            print(
                f"{name} w{width:g} keep {keep:g} {layout}: {d['total']:.2f} / {s['total']:.2f} ms",
                flush=True,
            )
    write(rows, pool_rows(10 * args.repeat), args)


def write(rows: list[dict], pools: list[dict], args: argparse.Namespace) -> None:
    """Table in docs/benchmarks/compact-anatomy.md: ms per kind, dense → compacted, and each kind's speedup."""
    lines = [
        "## Compaction: where the CPU time goes",
        "",
        "Written by `benchmarks/bench_compact_anatomy.py`: profiler self time of every aten operator, summed by",
        f"kind, per batch-64 forward pass (mean of {args.repeat}; {args.threads} thread(s); the models of",
        "`bench_compact.py`). Each cell: dense ms → compacted ms (speedup). `other` holds copies, reorders and",
        "allocation. The FLOPs reduction counts only conv and linear work.",
        "",
        "| model | keep | layout | FLOPs ÷ | " + " | ".join(KINDS) + " | total |",
        "|---|---|---|---|" + "---|" * (len(KINDS) + 1),
    ]
    for r in rows:
        cells = [
            f"{r['d'].get(k, 0):.2f} → {r['s'].get(k, 0):.2f} ({r['d'].get(k, 0) / max(r['s'].get(k, 0), 1e-9):.1f}×)"
            for k in (*KINDS, "total")
        ]
        label = f"{r['model']} w{r['width']:g}"
        lines.append(
            f"| {label} | {r['keep']:g} | {r['layout']} | {r['flops']:.2f} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "PyTorch's NCHW CPU max-pooling (`max_pool2d`, which also computes the argmax indices) against the same",
        "2×2 pooling written as three elementwise maxima over strided views (outputs checked equal), on LeNet's",
        f"pooling inputs (median of {10 * args.repeat} calls):",
        "",
        "| input | max_pool2d ms | strided max ms | ratio |",
        "|---|---|---|---|",
        *(
            f"| {r['shape']} | {r['max_pool2d']:.3f} | {r['strided']:.3f} | {r['max_pool2d'] / r['strided']:.1f}× |"
            for r in pools
        ),
    ]
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "compact-anatomy.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
