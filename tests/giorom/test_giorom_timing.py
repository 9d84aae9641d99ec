"""Spec sanity test 9, loosely (CI machines are noisy): processor time ∝ M·degree, decoder time ∝ N_query, and
doubling N_query adds only decoder time. Each figure is this thread's CPU time (one torch thread), the minimum
over repeated steps, so other processes on a shared machine disturb it little."""

from __future__ import annotations

import math
import time

import torch

import sparsenets.giorom as giorom
from tests.giorom.test_giorom_stepper import STATS

torch.set_num_threads(1)
BOX = ((0.0, 1.0), (0.0, 1.0))


def history(m: int, seed: int = 0) -> torch.Tensor:
    """[m, 6, 2] particles at rest, uniformly spread over the box."""
    return torch.rand(m, 1, 2, generator=torch.Generator().manual_seed(seed)).expand(m, 6, 2).contiguous()


def step_times(m: int, degree: float, steps: int = 6, **decode) -> dict[str, float]:
    """Fastest step's seconds per phase for M particles whose graph has about `degree` neighbours each."""
    radius = math.sqrt(degree / (math.pi * m))
    torch.manual_seed(0)
    model = giorom.Stepper(
        giorom.StepperConfig(STATS, BOX, radius=radius, hidden=32, n_mp=2, type_embedding=4)
    )
    run = giorom.rollout(model, history(m), steps, clock=time.thread_time, **decode)
    return {k: min(v) for k, v in run.times.items() if v}


def test_processor_time_grows_with_m_times_degree() -> None:
    base = step_times(1024, 12)["processor"]
    more_particles = step_times(4096, 12)["processor"]
    more_edges = step_times(1024, 48)["processor"]
    assert 2.0 < more_particles / base < 8.0, (base, more_particles)  # 4x the particles, same degree
    assert 1.8 < more_edges / base < 8.0, (base, more_edges)  # 4x the degree: edges dominate


def test_decoder_time_is_linear_in_queries_and_only_it_grows() -> None:
    g = torch.Generator().manual_seed(1)
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=64, smoothing=1.5, hidden=32))
    ref = history(512)[:, 0]

    def times(n_query: int) -> dict[str, float]:
        return step_times(512, 16, decoder=dec, reference=ref, queries=torch.rand(n_query, 2, generator=g))

    small, large, double = times(25_000), times(100_000), times(200_000)
    assert 2.0 < large["decoder"] / small["decoder"] < 8.0, (small, large)  # 4x the queries
    assert 1.4 < double["decoder"] / large["decoder"] < 3.0, (large, double)  # 2x the queries
    # the stepper's phases do not see the queries
    assert double["processor"] < 1.6 * large["processor"] and double["graph"] < 1.6 * large["graph"] + 1e-4
