"""SST vs full-rank (and LoRA, GaLore) at width 256: step time, optimizer-state size, peak memory.

Each method trains a 2-layer character transformer (d = 256, all attention/MLP linears at r = d/16) in its own
subprocess (one thread), so peak RSS is per method; rounds interleave the methods so that load from other
processes hits all of them alike. Writes docs/benchmarks/sst.md and docs/benchmarks/sst-cost.png.

    PYTHONPATH=src python benchmarks/bench_sst.py [--rounds 3] [--steps 15]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("full", "sst", "lora", "galore")
D, LAYERS, BATCH, CONTEXT, VOCAB = 256, 2, 16, 128, 80


def child(method: str, steps: int) -> dict:
    """Train `steps` steps of one method; return median step time, optimizer state and peak RSS."""
    import torch
    import torch.nn.functional as F

    from sparsenets.models.char_transformer import CharTransformer
    from sparsenets.spectral import (
        optimizer_state_numel,
        prepare_method,
        trainable_parameters,
        training_state_bytes,
    )

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = CharTransformer(VOCAB, D, 4, LAYERS, 4 * D, CONTEXT)
    setup = prepare_method(
        method, model, rank=D // 16, targets=("q", "k", "v", "o", "fc1", "fc2"), lr=1e-3, steps=1000,
        warmup=1, sst_period=5, restart_warmup=1, relora_period=200, seed=0,
    )  # fmt: skip
    x = torch.randint(0, VOCAB, (BATCH, CONTEXT + 1))
    times = []
    for step in range(steps + 3):
        t = time.perf_counter()
        setup.optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten()).backward()
        setup.optimizer.step()
        for cb in setup.callbacks:  # the SST projection and (every 5 steps) resampling are part of the cost
            cb.step(model, setup.optimizer)
        if step >= 3:
            times.append(time.perf_counter() - t)
    return {
        "method": method,
        "step_time_s": statistics.median(times),
        "optimizer_state": optimizer_state_numel(setup.optimizer),
        "trainable_params": trainable_parameters(model),
        "train_state_bytes": training_state_bytes(model, setup.optimizer),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", default="docs/benchmarks")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    results: dict[str, list[dict]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method in METHODS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", method, "--steps", str(args.steps)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
    report(results, Path(args.out))


def report(results: dict[str, list[dict]], out: Path) -> None:
    """Write the Markdown section and the bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = {}
    for method, rows in results.items():
        summary[method] = {
            "step_time_s": statistics.median(r["step_time_s"] for r in rows),
            "optimizer_state": rows[0]["optimizer_state"],
            "trainable_params": rows[0]["trainable_params"],
            "train_state_mib": rows[0]["train_state_bytes"] / 2**20,
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rows),
        }
    full = summary["full"]
    lines = [
        "## SST: step time and optimizer state (width 256)",
        "",
        f"2-layer character transformer, d = {D}, MLP {4 * D}, batch {BATCH}×{CONTEXT} tokens, all attention and "
        f"MLP linears at r = d/16 = {D // 16} (SST, LoRA, GaLore); embeddings, LayerNorms and the tied head dense "
        "and trained by Adam in every method. CPU, one thread, median over "
        f"{len(results['full'])} interleaved rounds (each the median of its steps). Ratios are against full rank "
        "measured in the same run. Peak RSS includes the Python/torch runtime (~same for all).",
        "",
        "| method | step time (ms) | × full | Adam state scalars | × full | trainable params | "
        "weights+grads+state (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, s in summary.items():
        lines.append(
            f"| {method} | {s['step_time_s'] * 1e3:.1f} | {s['step_time_s'] / full['step_time_s']:.2f} | "
            f"{s['optimizer_state']:,} | {s['optimizer_state'] / full['optimizer_state']:.1%} | "
            f"{s['trainable_params']:,} | {s['train_state_mib']:.2f} | {s['peak_rss_mib']:.0f} |"
        )
    sst = summary["sst"]
    state_ratio = sst["optimizer_state"] / full["optimizer_state"]
    time_ratio = sst["step_time_s"] / full["step_time_s"]
    lines += [
        "",
        f"Acceptance (issue 5): SST optimizer state {state_ratio:.1%} of full rank (target <= 30%: "
        f"{'met' if state_ratio <= 0.30 else 'NOT met'}); SST step time {time_ratio:.2f}× full rank (target <= 1.5×: "
        f"{'met' if time_ratio <= 1.5 else 'NOT met'}).",
        "",
        "![SST cost](sst-cost.png)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "sst.md").write_text("\n".join(lines))
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    names = list(summary)
    ax[0].bar(names, [summary[m]["step_time_s"] / full["step_time_s"] for m in names])
    ax[0].axhline(1.5, color="r", ls="--", lw=1)
    ax[0].set(ylabel="step time / full rank", title="step time")
    ax[1].bar(names, [summary[m]["optimizer_state"] / full["optimizer_state"] for m in names])
    ax[1].axhline(0.3, color="r", ls="--", lw=1)
    ax[1].set(ylabel="optimizer state / full rank", title="optimizer state")
    fig.tight_layout()
    fig.savefig(out / "sst-cost.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
