"""Benchmark: training grokking runs as one stacked ensemble vs one model at a time, and the cost of holding masks.

Writes docs/benchmarks/tickets.md. Run: PYTHONPATH=src python benchmarks/tickets.py [--steps 200] [--members 24]
All timings are CPU seconds of this process (wall time on a shared machine would measure the neighbours).
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import torch

from sparsenets import data
from sparsenets.masks import attach_masks, detach_masks
from sparsenets.models.grokking import GrokMLP
from sparsenets.tickets import magnitude_scores, prune_members, seeded_ensemble, snapshot, train_members

Batch = tuple[torch.Tensor, torch.Tensor]


def cpu_seconds() -> float:
    """User + system CPU time of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class PlainMLP(GrokMLP):
    """The same network computed the textbook way (embedding lookup, then three matmuls): the baseline."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, 2) → logits (E, B, p)."""
        emb = self.W_emb.transpose(1, 2)  # (E, p, d_emb)
        h = torch.relu(torch.bmm(emb[:, x[:, 0]] + emb[:, x[:, 1]], self.W_in.transpose(1, 2)))
        return torch.bmm(torch.bmm(h, self.W_out.transpose(1, 2)), self.W_unemb.transpose(1, 2))


def timed(model: torch.nn.Module, split: tuple[Batch, Batch], steps: int) -> float:
    """CPU seconds per optimizer step of `train_members` (full batch, eval every 50 steps); split: (train, test)."""
    names = [n for n, _ in model.named_parameters()]
    train_members(model, *split, 10, names=names, run_dir=None, eval_every=50)  # warm-up
    t = cpu_seconds()
    train_members(model, *split, steps, names=names, run_dir=None, eval_every=50)
    return (cpu_seconds() - t) / steps


def main() -> None:
    """Measure and write the Markdown section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--members", type=int, default=24)
    ap.add_argument("--out", default="docs/benchmarks/tickets.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, test = (
        tuple(data.load("modular", split=part, p=67, op="add", train_frac=0.4, seed=0, pairs="le"))
        for part in ("train", "test")
    )
    split = (train, test)
    rows = []
    plain = timed(PlainMLP(ensemble=1), split, args.steps)
    rows.append(("1 model, textbook forward (baseline)", 1, plain, plain))
    single = timed(seeded_ensemble(lambda: GrokMLP(), [0]), split, args.steps)
    rows.append(("1 model, factorised forward", 1, single, single))
    for e in sorted({3, 8, args.members}):
        per_step = timed(seeded_ensemble(lambda: GrokMLP(), list(range(e))), split, args.steps)
        rows.append((f"{e} models stacked", e, per_step, per_step / e))
    masked = seeded_ensemble(lambda: GrokMLP(), list(range(args.members)))
    attach_masks(masked, prune_members(magnitude_scores(snapshot(masked)), keep=0.4))
    with_masks = timed(masked, split, args.steps)
    detach_masks(masked)
    without = timed(masked, split, args.steps)
    lines = [
        "## tickets: stacked grokking runs",
        "",
        f"Paper MLP (p=67, 884 training pairs, full batch, AdamW, eval every 50 steps), {args.steps} steps, one thread, "
        f"CPU seconds of the process; {platform.processor() or platform.machine()}, torch {torch.__version__}.",
        "",
        "| setting | models | ms per step | ms per model-step | speedup per model vs the baseline |",
        "|---|---|---|---|---|",
    ]
    for name, e, per_step, per_model in rows:
        lines.append(
            f"| {name} | {e} | {per_step * 1e3:.1f} | {per_model * 1e3:.2f} | {plain / per_model:.2f}× |"
        )
    lines += [
        "",
        f"Holding masks (HoldMasks: gradient and weight masking every step) on {args.members} stacked models: "
        f"{with_masks * 1e3:.1f} ms/step with masks vs {without * 1e3:.1f} ms/step without "
        f"({(with_masks / without - 1) * 100:+.1f}%).",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    start = time.time()
    main()
