"""Dense vs compacted CPU latency for the WGSEF architectures at several widths.

Latency does not depend on the trained weights, only on the kept channel counts, so each model here gets the
same per-layer keep ratio as its study (LeNet-5 1/2, VGG-16-BN 0.4; ResNet-18 0.4) by a top-k mask on its initial weights,
is compacted with `sparsenets.compact.compact`, checked for equal outputs, and timed with
`sparsenets.compact.measure` (dense and compacted interleaved in the same run) at batch 1 and 64 with 1 and
2 threads. This answers, without training, whether "batch-64 speedup ≥ 0.7 × FLOPs reduction" can hold at
a given width. Writes docs/benchmarks/NAME.md and NAME.png (NAME: `--name`, default compact).

    PYTHONPATH=src python benchmarks/bench_compact.py [--repeat 30] [--widths 0.125 0.25 0.5 1]
        [--lenet-keeps 0.25 0.3 0.35 0.4 0.45 0.5] [--resnet-widths 0.25 0.5 1] [--name compact]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sparsenets.compact import compact, measure
from sparsenets.groups import coupled_layouts
from sparsenets.models.cnn import VGG16BN, LeNet5, ResNet18
from sparsenets.optim import kept_count
from sparsenets.prox import topk_multipliers

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def masked_and_compact(
    model: torch.nn.Module, keep: float | list[int]
) -> tuple[torch.nn.Module, torch.nn.Module, float]:
    """Zero all but the top `keep` share of coupled groups per layer (a ratio), or the top `keep[i]` groups of
    layer i (a list of counts); return (masked, compacted, max |diff|)."""
    sample = torch.randn(1, 1, 28, 28)
    model.eval()
    layouts = coupled_layouts(model, sample)  # tracing needs autograd on; the scaling does not
    ks = list(keep) if isinstance(keep, list) else [kept_count(lay.m, keep) for lay in layouts]
    if len(ks) != len(layouts):
        raise SystemExit(f"counts has {len(ks)} entries; the model has {len(layouts)} coupled groups")
    for lay, k in zip(layouts, ks):
        with torch.no_grad():
            lay.scale_(topk_multipliers(lay.norms(), k, None))
    small = compact(model, sample)
    x = torch.randn(64, 1, 28, 28)
    with torch.no_grad():
        return model, small, float((model(x) - small(x)).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--widths", type=float, nargs="*", default=[0.125, 0.25, 0.5, 1.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--lenet-keeps", type=float, nargs="*", default=[0.5])
    parser.add_argument("--resnet-widths", type=float, nargs="*", default=[])
    parser.add_argument("--name", default="compact", help="writes docs/benchmarks/NAME.md and NAME.png")
    args = parser.parse_args()
    torch.manual_seed(0)
    cases = [("LeNet-5", 1.0, keep, LeNet5(width=1.0)) for keep in args.lenet_keeps]
    cases += [("VGG-16-BN", w, 0.4, VGG16BN(width=w)) for w in args.widths]
    cases += [("ResNet-18", w, 0.4, ResNet18(width=w)) for w in args.resnet_widths]
    rows = []
    for name, width, keep, model in cases:
        dense, small, diff = masked_and_compact(model, keep)
        for threads in args.threads:
            torch.set_num_threads(threads)
            m = measure(dense, small, torch.randn(1, 1, 28, 28), repeat=args.repeat)
            rows.append({"model": name, "width": width, "keep": keep, "threads": threads, "diff": diff, **m})
            print(
                f"{name} width {width} threads {threads}: FLOPs ÷ {m['flops_reduction']:.2f}, batch-64 speedup "
                f"NCHW {m['speedup_b64']:.2f}x, CL {m['speedup_cl_b64']:.2f}x, best {m['speedup_best_b64']:.2f}x",
                flush=True,
            )
    write(rows, args)


def write(rows: list[dict], args: argparse.Namespace) -> None:
    """Table in docs/benchmarks/NAME.md, speedup ÷ FLOPs reduction against width in NAME.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    DOCS.mkdir(parents=True, exist_ok=True)
    lines = [
        "## Compaction: dense vs compacted CPU latency ("
        + ", ".join(dict.fromkeys(r["model"] for r in rows))
        + ")",
        "",
        "Written by `benchmarks/bench_compact.py` (top-k mask on the initial weights at the study's keep ratio per",
        f"layer, compacted, outputs checked; median of {args.repeat} forward passes, all variants interleaved in",
        "the same run; input 1×28×28). Speedups: NCHW = both models in PyTorch's default layout; CL = both",
        "channels-last; best = each model in its faster layout. Target of issue 3: batch-64 speedup ≥ 0.7 ×",
        "FLOPs reduction.",
        "",
        "| model | width | keep | threads | FLOPs dense | FLOPs ÷ | b1 × NCHW | b64 dense ms NCHW / CL "
        "| b64 × NCHW | b64 × CL | b64 × best | NCHW ÷ FLOPs ÷ | best ÷ FLOPs ÷ | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['width']:g} | {r['keep']:g} | {r['threads']} | {r['flops_dense']:.3g} "
            f"| {r['flops_reduction']:.2f} | {r['speedup_b1']:.2f} "
            f"| {1e3 * r['latency_b64_dense']:.2f} / {1e3 * r['latency_cl_b64_dense']:.2f} "
            f"| {r['speedup_b64']:.2f} | {r['speedup_cl_b64']:.2f} | {r['speedup_best_b64']:.2f} "
            f"| {r['speedup_b64'] / r['flops_reduction']:.2f} | {r['speedup_best_b64'] / r['flops_reduction']:.2f} "
            f"| {r['diff']:.1e} |"
        )
    lines += ["", f"![speedup over FLOPs reduction vs width]({args.name}.png)", ""]
    (DOCS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in ("VGG-16-BN", "ResNet-18"):
        for threads in args.threads:
            sel = [r for r in rows if r["threads"] == threads and r["model"] == model]
            for key, style, what in (
                ("speedup_b64", "o-", "NCHW"),
                ("speedup_best_b64", "s--", "best layout"),
            ):
                if sel:
                    ax.plot(
                        [r["width"] for r in sel],
                        [r[key] / r["flops_reduction"] for r in sel],
                        style,
                        label=f"{model}, {what}, {threads} thread(s)",
                    )
    ax.axhline(0.7, color="gray", ls="--", label="target 0.7")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width multiplier")
    ax.set_ylabel("batch-64 speedup ÷ FLOPs reduction")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / f"{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
