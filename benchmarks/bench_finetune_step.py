"""One fine-tuning step of VGG-16-BN (batch 128, 1×28×28, SGD momentum, bf16 autocast on the CPU): the masked
model (dense shapes, pruned groups zero) vs its compacted copy, and the per-step teacher forward that the cached
teacher logits remove. Median of 4 timed steps after 2 warm-up steps; one line per width and thread count
(the figures in docs/methods/wgsef.md, "Fine-tuning the compacted model", came from it).

    PYTHONPATH=src python benchmarks/bench_finetune_step.py [--widths 1.0] [--threads 2] \
        [--counts 32 32 48 48 112 112 112 224 224 224 224 224 224]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bench_compact import masked_and_compact
from sparsenets.models.cnn import VGG16BN

# keep 0.43 rounded to 16 at full width: the counts of the full-width CPU study (5.21x fewer FLOPs)
FULL_WIDTH_COUNTS = [32, 32, 48, 48, 112, 112, 112, 224, 224, 224, 224, 224, 224]


def step_ms(model: torch.nn.Module, train: bool, steps: int = 6) -> float:
    """Median ms of one bf16-autocast training step (`train`) or no-grad forward, after two warm-up steps."""
    model.train(train)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(train):
            out = model(x)
            if train:
                opt.zero_grad()
                F.cross_entropy(out, y).backward()
                opt.step()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument(
        "--counts", type=int, nargs="*", default=None, help="kept filters per conv (width 1.0)"
    )
    parser.add_argument("--keep", type=float, default=0.43, help="keep ratio where --counts does not apply")
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        for width in args.widths:
            torch.manual_seed(0)
            keep = (args.counts or FULL_WIDTH_COUNTS) if width == 1.0 else args.keep
            masked, small, diff = masked_and_compact(VGG16BN(width=width), keep)
            m, c, t = step_ms(masked, True), step_ms(small, True), step_ms(masked, False)
            print(
                f"width {width} threads {threads}: masked step {m:.0f} ms, compacted step {c:.0f} ms "
                f"({m / c:.2f}x), teacher forward {t:.0f} ms; masked step + teacher / compacted step "
                f"{(m + t) / c:.2f}x (max |diff| {diff:.1e})"
            )


if __name__ == "__main__":
    main()
