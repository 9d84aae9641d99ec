"""The SST round schedule as a trainer Callback, plus the jagged LR schedule shared with ReLoRA*.

Every step: clamp s >= 0 and renormalise the active columns. Every T3 steps (an iteration): resample the active
pairs of every layer and drop the optimizer state of the swapped slots. Every T2 iterations (a round): re-SVD first
and drop the state of s. Sampling uses a generator seeded by (seed, iteration), and rank 0's draw and re-SVD are
broadcast, so every DDP rank holds the same factors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from sparsenets.spectral.convert import SSTConfig, sst_layers
from sparsenets.spectral.sampling import sample_indices
from sparsenets.train import dist
from sparsenets.train.callbacks import Callback, TrainState


def reset_optimizer_state(optimizer: Any, params: Iterable[nn.Parameter] | None = None) -> None:
    """Forget the optimizer state (moments, step count) of `params`, or of every parameter when None.

    Adam-like optimizers re-create zero moments lazily at the next step.
    """
    state = getattr(optimizer, "state", None)
    if state is None:
        return
    if params is None:
        state.clear()
        return
    for p in params:
        state.pop(p, None)


def jagged_lr_lambda(
    total_steps: int, warmup: int, restart_period: int = 0, restart_warmup: int = 0, min_ratio: float = 0.1
) -> Callable[[int], float]:
    """LR multiplier for LambdaLR: linear warm-up, cosine decay to `min_ratio`, and (if `restart_period`) a
    linear re-warm-up over `restart_warmup` steps at the start of every period (SST iterations, ReLoRA* merges).

    Returns:
        f(step) -> factor in (0, 1], where `step` is the index of the optimizer step about to run.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        base = min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        if restart_period and restart_warmup and step >= restart_period:
            base *= min(1.0, (step % restart_period + 1) / restart_warmup)
        return base

    return factor


class StepSchedule(Callback):
    """A trainer Callback that a training loop of your own can drive as well: call `step(model, optimizer)` right
    after each `optimizer.step()` (it counts the steps itself; under `Trainer.fit` the trainer's count is used)."""

    own_steps = 0  # steps counted by `step`, for loops other than Trainer.fit

    def on_step(self, step: int, module: nn.Module, optimizer: Any) -> None:
        """The work after optimizer step number `step` (1-based) of `module`'s training."""
        raise NotImplementedError

    def after_step(self, state: TrainState) -> None:
        self.on_step(state.step, state.module, state.trainer.optimizer)

    def step(self, model: nn.Module, optimizer: Any) -> None:
        """After `optimizer.step()` in a loop of your own: the same work as under `Trainer.fit`."""
        self.own_steps += 1
        self.on_step(self.own_steps, model, optimizer)


class SSTSchedule(StepSchedule):
    """Resample, renormalise and re-SVD the SSTLinear layers of the trained model.

    Under `Trainer.fit` the pairs of iteration 0 are drawn before the first step (`on_train_start`); a loop of your
    own that calls `step` trains the pairs `sst_convert` loaded (the r largest σ) until the first resample, unless
    it calls `resample(model, optimizer, 0)` before its first step.

    Args:
        config: the SSTConfig used by `sst_convert` (period T3, T2, sampling mode, resvd flag).
        seed: base seed of the per-iteration sampling generator (same on every rank).
        resvd_dtype: precision of the re-decomposition.
    """

    def __init__(self, config: SSTConfig, seed: int = 0, resvd_dtype: torch.dtype = torch.float64) -> None:
        self.config, self.seed, self.resvd_dtype = config, seed, resvd_dtype
        self.resamples = 0
        self.resvds = 0

    def iterations_per_round(self, module: nn.Module) -> int:
        """T2: the configured value, else k/r with k the smallest min(in, out) among SST layers."""
        if self.config.iterations_per_round is not None:
            return self.config.iterations_per_round
        layers = sst_layers(module)
        k = min(layer.k for layer in layers) if layers else self.config.rank
        return max(1, k // self.config.rank)

    def on_train_start(self, state: TrainState) -> None:
        if state.step == 0:
            self.resample(state.module, state.trainer.optimizer, iteration=0)

    def on_step(self, step: int, module: nn.Module, optimizer: Any) -> None:
        """Project every layer; at the end of an iteration re-SVD (at the end of a round) and resample."""
        for layer in sst_layers(module):
            layer.project_()
        if step % self.config.period:
            return
        iteration = step // self.config.period
        if self.config.resvd and iteration % self.iterations_per_round(module) == 0:
            self.resvd(module, optimizer)
        self.resample(module, optimizer, iteration)

    def resample(self, module: nn.Module, optimizer: Any, iteration: int) -> list[torch.Tensor]:
        """Draw new active pairs for every layer (identical on all ranks) and reset their optimizer state.

        Returns:
            The index tensors, one (r,) per layer.
        """
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + iteration)
        layers = sst_layers(module)
        draws = [sample_indices(layer.s, layer.rank, g, self.config.sampling) for layer in layers]
        # rank 0 decides, whatever tiny float differences the other ranks hold
        draws = dist.broadcast_object(draws)
        for layer, idx in zip(layers, draws):
            layer.set_active(idx)
            reset_optimizer_state(optimizer, [layer.U_act, layer.V_act])
        self.resamples += 1
        return draws

    def resvd(self, module: nn.Module, optimizer: Any) -> None:
        """Re-SVD every layer (rank 0's factors are broadcast) and reset the optimizer state of s."""
        layers = sst_layers(module)
        for layer in layers:
            layer.resvd(self.resvd_dtype)
        if dist.current().enabled:
            factors = dist.broadcast_object(
                [(lay.U.cpu(), lay.s.detach().cpu(), lay.V.cpu()) for lay in layers]
            )
            with torch.no_grad():
                for layer, (u, s, v) in zip(layers, factors):
                    layer.U.copy_(u)
                    layer.s.copy_(s)
                    layer.V.copy_(v)
                    layer.U_act.copy_(layer.U[:, layer.active])
                    layer.V_act.copy_(layer.V[:, layer.active])
        reset_optimizer_state(optimizer, [layer.s for layer in layers])
        self.resvds += 1

    def state_dict(self) -> dict[str, Any]:
        return {"resamples": self.resamples, "resvds": self.resvds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.resamples, self.resvds = int(state["resamples"]), int(state["resvds"])
