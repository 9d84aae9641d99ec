"""Autoregressive rollout: the graph rebuilt every step, optional decoding to dense queries, timed per phase."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.giorom.features import integrate, require_finite
from sparsenets.giorom.graph import radius_graph

Decoder = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Rollout:
    """A rollout's result.

    Attributes:
        positions: [steps, M, d] predicted sparse positions (frames after the history window).
        dense: [steps, Q, d] decoded positions at the queries, or None without a decoder.
        times: seconds per step for "graph", "processor" (stepper + integrator) and "decoder" (each a list).
        bind_s: seconds spent once, before the first step, fixing the decoder to the queries (its `bind`: the
            query-only work a rollout need not repeat); 0 without a decoder.
    """

    positions: torch.Tensor
    dense: torch.Tensor | None
    times: dict[str, list[float]] = field(default_factory=dict)
    bind_s: float = 0.0

    def median_ms(self) -> dict[str, float]:
        """Median milliseconds per step of each phase, and of their sum ("step")."""
        out = {k: 1e3 * float(torch.tensor(v).median()) for k, v in self.times.items() if v}
        steps = len(next(iter(self.times.values())))
        total = [sum(v[i] for v in self.times.values() if v) for i in range(steps)]
        out["step"] = 1e3 * float(torch.tensor(total).median())
        return out


def _synced(clock: Callable[[], float], device: torch.device) -> float:
    if device.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize(device)
    return clock()


def bind_decoder(
    decoder: Decoder, reference: torch.Tensor, queries: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A decoder fixed to sparse reference points [M, d] and queries [Q, d]: `positions [M, d] -> [Q, d]`, by
    the decoder's own `bind` where it has one (query-only work done once), else a plain closure."""
    bind = getattr(decoder, "bind", None)
    if bind is not None:
        return bind(reference, queries)
    return lambda positions: decoder(reference, positions, queries)


def rollout(
    model: nn.Module,
    x_hist: torch.Tensor,
    steps: int,
    types: torch.Tensor | None = None,
    decoder: Decoder | None = None,
    reference: torch.Tensor | None = None,
    queries: torch.Tensor | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Rollout:
    """Run the stepper autoregressively for `steps` frames from a history window.

    Args:
        model: a `Stepper` (any module with its contract and a `cfg` holding radius and self_loops).
        x_hist: [M, C + 1, d] the last C + 1 positions of each particle, oldest first.
        steps: frames to predict.
        types: [M] particle types (default all 0).
        decoder: optional `decoder(reference, positions, queries)`; with it, every step is decoded (through
            `decoder.bind(reference, queries)` once where the decoder has one).
        reference: [M, d] the sparse particles' reference coordinates X (needed with a decoder).
        queries: [Q, d] reference coordinates to decode at (needed with a decoder).
        clock: seconds now; wall time by default (`time.thread_time` counts only this thread's CPU time, which
            busy shared machines disturb less).

    Returns:
        A `Rollout` with positions [steps, M, d], dense [steps, Q, d] or None, and per-step times.
    """
    cfg = model.cfg
    if x_hist.dim() != 3 or x_hist.shape[1] != cfg.history + 1 or x_hist.shape[2] != cfg.dim:
        raise ConfigError(
            f"x_hist must be [M, {cfg.history + 1}, {cfg.dim}] (history window, oldest first), "
            f"got {tuple(x_hist.shape)}"
        )
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    require_finite(x_hist, "initial positions")
    if decoder is not None and (reference is None or queries is None):
        raise ConfigError("decoding a rollout needs the sparse reference coordinates and the queries")
    m, c1, d = x_hist.shape
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    types = torch.zeros(m, dtype=torch.long) if types is None else types.long()
    types = types.to(device)
    if hasattr(model, "check"):  # shapes and type range once, not per step
        model.check({"pos": x_hist, "types": types})
    traj = torch.empty(
        c1 + steps, m, d, device=device, dtype=dtype
    )  # one buffer: each window is a view into it
    traj[:c1] = x_hist.to(device, dtype).transpose(0, 1)
    dense, decode, bind_s = None, None, 0.0
    if decoder is not None:
        reference, queries = reference.to(device, dtype), queries.to(device, dtype)
        dense = torch.empty(steps, queries.shape[0], d, device=device, dtype=dtype)
        t0 = _synced(clock, device)
        with torch.no_grad():
            decode = bind_decoder(decoder, reference, queries)
        bind_s = _synced(clock, device) - t0
    times: dict[str, list[float]] = {"graph": [], "processor": [], "decoder": []}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for s in range(steps):
            window = traj[s : s + c1].transpose(0, 1)  # [M, C + 1, d]
            t0 = _synced(clock, device)
            graph = radius_graph(window[:, -1], cfg.radius, cfg.self_loops)
            t1 = _synced(clock, device)
            acc = model({"pos": window, "types": types, "graph": graph})["acc"]
            traj[c1 + s] = integrate(window, acc)
            t2 = _synced(clock, device)
            times["graph"].append(t1 - t0)
            times["processor"].append(t2 - t1)
            if decode is not None:
                dense[s] = decode(traj[c1 + s])
                times["decoder"].append(_synced(clock, device) - t2)
    model.train(was_training)
    return Rollout(positions=traj[c1:], dense=dense, times=times, bind_s=bind_s)
