"""Step times of the study's arms (median of `repeat` rollout steps, split into graph, processor and decoder),
decoder time vs the number of query points, and the same split at a larger N with untrained weights (the time
of a step does not depend on the weights, only on sizes and the graph's degree)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from sparsenets import giorom

WARMUP = 3  # steps before the clock starts (allocator, first graph build)


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def step_split(
    model: giorom.Stepper,
    x_hist: torch.Tensor,
    types: torch.Tensor,
    repeat: int,
    decoder: giorom.KernelDecoder | None = None,
    reference: torch.Tensor | None = None,
    queries: torch.Tensor | None = None,
) -> dict[str, float]:
    """Median ms per rollout step of graph, processor (stepper + integrator), decoder and their sum.

    Args:
        x_hist: [M, C + 1, d] history window; types: [M].
        decoder, reference [M, d], queries [Q, d]: decode every step at the queries (B's end-to-end step).

    Returns:
        {"graph_ms", "processor_ms", "decoder_ms" (0 without a decoder), "stepper_ms" (graph + processor),
        "total_ms", "bind_ms"}; medians are per phase except `total_ms`, the median of whole steps; `bind_ms` is
        the decoder's one-time binding to the queries before the first step (not in any step).
    """
    giorom.rollout(model, x_hist, WARMUP, types=types, decoder=decoder, reference=reference, queries=queries)
    run = giorom.rollout(
        model, x_hist, repeat, types=types, decoder=decoder, reference=reference, queries=queries
    )
    t = run.times
    stepper = [g + p for g, p in zip(t["graph"], t["processor"])]
    med = run.median_ms()
    return {
        "graph_ms": med["graph"],
        "processor_ms": med["processor"],
        "decoder_ms": med.get("decoder", 0.0),
        "stepper_ms": 1e3 * statistics.median(stepper),
        "total_ms": med["step"],
        "bind_ms": 1e3 * run.bind_s,
    }


def decoder_vs_queries(
    decoder: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    reference: torch.Tensor,
    positions: torch.Tensor,
    dense_reference: torch.Tensor,
    counts: list[int],
    repeat: int,
    seed: int = 0,
) -> list[float]:
    """Median ms of one rollout step's decode at each query count (the decoder bound to the queries once, as a
    rollout does): queries are the dense reference points, repeated with a small jitter (clipped to the dense
    points' bounding box) where more are asked for than there are particles.

    Args:
        decoder: `decoder(reference, positions, queries) -> [Q, d]` (kernel or Shepard).
        reference, positions: [M, d] sparse X and x(t); dense_reference: [N, d]; counts: query counts.
    """
    g = torch.Generator().manual_seed(seed)
    low, high = dense_reference.min(0).values, dense_reference.max(0).values
    out = []
    with torch.no_grad():
        for q in counts:
            reps = -(-q // dense_reference.shape[0])
            pool = dense_reference.repeat(reps, 1)
            copies = (torch.arange(len(pool)) >= len(dense_reference))[:, None]  # the first N stay exact
            pool = pool + 1e-3 * torch.randn(pool.shape, generator=g) * copies
            queries = torch.minimum(torch.maximum(pool[:q], low), high)
            bound = giorom.bind_decoder(decoder, reference, queries)
            out.append(_median_ms(lambda bound=bound: bound(positions), repeat))
    return out
