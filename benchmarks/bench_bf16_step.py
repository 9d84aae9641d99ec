"""One VGG-16-BN training step (batch 128, 1×28×28, SGD momentum) in float32 vs under bfloat16 autocast on the
CPU: the median of 4 timed steps after 2 warm-up steps, per width and thread count. Prints one line per case
(the figures in docs/methods/wgsef.md, "Mixed precision on this CPU", came from it).

    PYTHONPATH=src python benchmarks/bench_bf16_step.py [--widths 0.5 1.0] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from sparsenets.models.cnn import VGG16BN


def step_ms(width: float, bf16: bool, steps: int = 6) -> float:
    """Median ms of one training step after two warm-up steps."""
    torch.manual_seed(0)
    model = VGG16BN(width=width)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        for width in args.widths:
            fp32, bf16 = step_ms(width, False), step_ms(width, True)
            print(
                f"width {width} threads {threads}: fp32 {fp32:.0f} ms, bf16 {bf16:.0f} ms, {fp32 / bf16:.2f}x"
            )


if __name__ == "__main__":
    main()
