"""Trainer overhead: steps per second of `Trainer.fit` against a bare PyTorch loop on the same model and batches.

Writes docs/benchmarks/trainer.md. Run: `PYTHONPATH=src python benchmarks/bench_trainer.py [--threads 2]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sparsenets.models import MLP
from sparsenets.train import TensorBatches, Trainer

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def _setup(width: int, in_dim: int, batch: int):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch * 50, in_dim, generator=g), torch.randint(0, 10, (batch * 50,), generator=g)
    model = MLP(in_dim, (width, width), 10)
    return model, torch.optim.AdamW(model.parameters(), 1e-3), TensorBatches(x, y, batch_size=batch)


def bare(width: int, in_dim: int, batch: int, steps: int) -> float:
    """Seconds for `steps` AdamW steps in a hand-written loop."""
    model, opt, batches = _setup(width, in_dim, batch)
    t0 = time.perf_counter()
    for s in range(steps):
        xb, yb = batches(s)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return time.perf_counter() - t0


def trainer(width: int, in_dim: int, batch: int, steps: int) -> float:
    """Seconds for the same steps through `Trainer.fit` (no files, no evaluation)."""
    model, opt, batches = _setup(width, in_dim, batch)
    t = Trainer(model, opt, batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]), steps, progress=False)
    t0 = time.perf_counter()
    t.fit()
    return time.perf_counter() - t0


def main() -> None:
    """Time both loops on a tiny and a MNIST-sized MLP; best of 3; write the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, width, in_dim, batch, steps in [
        ("tiny (grokking-size)", 48, 64, 64, 2000),
        ("mnist mlp", 512, 784, 128, 300),
    ]:
        b = min(bare(width, in_dim, batch, steps) for _ in range(3))
        t = min(trainer(width, in_dim, batch, steps) for _ in range(3))
        rows.append(f"| {name} | {steps} | {steps / b:,.0f} | {steps / t:,.0f} | {t / b:.2f} |")
    OUT.mkdir(parents=True, exist_ok=True)
    text = (
        "## Trainer overhead\n\n"
        f"Steps per second, AdamW, CPU, {args.threads} threads, best of 3, measured in one run of "
        "`benchmarks/bench_trainer.py`.\n\n"
        "| model | steps | bare loop steps/s | Trainer steps/s | Trainer time / bare time |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    (OUT / "trainer.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
