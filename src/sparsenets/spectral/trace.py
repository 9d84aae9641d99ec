"""Measuring a training run as the method comparisons report it: gradient-norm trace, step time, memory costs."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn

from sparsenets.spectral.stats import optimizer_state_numel, trainable_parameters, training_state_bytes
from sparsenets.train.callbacks import Callback, TrainState


class GradNormTrace(Callback):
    """Global gradient norm of the trainable parameters every `every` steps, and wall time per step.

    Attributes:
        trace: [[step, ‖∇‖₂], ...], the norm over every parameter that has a gradient.
        step_times: seconds between consecutive optimizer steps (evaluations excluded).
    """

    def __init__(self, every: int = 5) -> None:
        self.every = every
        self.trace: list[list[float]] = []
        self.step_times: list[float] = []
        self._t: float | None = None

    def after_backward(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            grads = [p.grad.norm() for p in state.module.parameters() if p.grad is not None]
            self.trace.append([state.step, float(torch.stack(grads).norm())])

    def after_step(self, state: TrainState) -> None:
        now = time.perf_counter()
        if self._t is not None:
            self.step_times.append(now - self._t)
        self._t = now

    def on_eval(self, state: TrainState, metrics: dict[str, float]) -> None:
        self._t = None  # the evaluation is not a training step

    def state_dict(self) -> dict[str, Any]:
        """The trace and step times so far (a resumed run keeps the part before its checkpoint)."""
        return {"trace": [list(t) for t in self.trace], "step_times": list(self.step_times)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trace = [list(t) for t in state.get("trace", [])]
        self.step_times = list(state.get("step_times", []))

    def median_step_time(self) -> float:
        """Median seconds per training step (evaluations excluded); NaN before two steps."""
        return statistics.median(self.step_times) if self.step_times else float("nan")


def cost_summary(model: nn.Module, optimizer: Any, trace: GradNormTrace) -> dict[str, float]:
    """What a run cost: trainable parameters, optimizer-state scalars, training-state bytes, median step time.

    Returns:
        {"trainable_params", "optimizer_state", "train_state_bytes", "step_time_s"}.
    """
    return {
        "trainable_params": trainable_parameters(model),
        "optimizer_state": optimizer_state_numel(optimizer),
        "train_state_bytes": training_state_bytes(model, optimizer),
        "step_time_s": trace.median_step_time(),
    }
