"""Weight snapshots, rewinding, and the norm-matched dense control."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.masks import apply_masks_
from sparsenets.train.callbacks import Callback, TrainState

Tensors = Mapping[str, torch.Tensor]


def snapshot(module: nn.Module, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Exact copies of the named parameters (all parameters when `names` is None): name → tensor."""
    table = dict(module.named_parameters())
    return {n: table[n].detach().clone() for n in (names if names is not None else table)}


@torch.no_grad()
def rewind_(module: nn.Module, saved: Tensors) -> None:
    """Copy `saved` tensors back into the parameters bit for bit, then zero what the attached masks prune."""
    table = dict(module.named_parameters())
    for n, t in saved.items():
        if n not in table or table[n].shape != t.shape:
            raise SparsenetsError(
                f"snapshot tensor {n!r} does not match the module; rewind onto the same architecture"
            )
        table[n].copy_(t)
    apply_masks_(module)


class SaveWeightsAt(Callback):
    """Trainer callback that keeps an exact snapshot of the parameters after each step in `steps` (0 = at start).

    `snapshots[step]` holds name → tensor. Used for rewinding to step t and for masks taken mid-training.
    """

    def __init__(self, steps: Sequence[int], names: Sequence[str] | None = None) -> None:
        self.steps, self.names = set(steps), names
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_start(self, state: TrainState) -> None:
        """Step 0 is the weights before any update."""
        if state.step == 0 and 0 in self.steps:
            self.snapshots[0] = snapshot(state.module, self.names)

    def after_step(self, state: TrainState) -> None:
        """Keep a copy when this step is one of the requested ones."""
        if state.step in self.steps:
            self.snapshots[state.step] = snapshot(state.module, self.names)

    def state_dict(self) -> dict[str, Any]:
        """Snapshots survive a resume."""
        return {str(k): v for k, v in self.snapshots.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the snapshots."""
        self.snapshots = {int(k): dict(v) for k, v in state.items()}


def norm_ratio(init: Tensors, masks: Tensors, p: float = 2.0, *, per_tensor_sum: bool = False) -> float:
    """r_p = ‖θ0 ⊙ m‖_p / ‖θ0‖_p over all masked tensors (norm of the concatenation).

    `per_tensor_sum=True` gives the reference code's variant: Σ_t ‖θ0_t ⊙ m_t‖_p / Σ_t ‖θ0_t‖_p.
    """
    if p <= 0:
        raise SparsenetsError(f"norm order p must be positive, got {p}")
    names = list(masks)
    if per_tensor_sum:
        num = sum(float(torch.linalg.vector_norm((init[n] * masks[n]).double(), p)) for n in names)
        den = sum(float(torch.linalg.vector_norm(init[n].double(), p)) for n in names)
        return num / den
    kept = torch.cat([(init[n] * masks[n]).double().reshape(-1) for n in names])
    full = torch.cat([init[n].double().reshape(-1) for n in names])
    return float(torch.linalg.vector_norm(kept, p) / torch.linalg.vector_norm(full, p))


@torch.no_grad()
def scale_(module: nn.Module, names: Sequence[str], factor: float | torch.Tensor) -> None:
    """Multiply the named parameters by `factor` in place (a scalar, or (E,) for stacked networks)."""
    table = dict(module.named_parameters())
    for n in names:
        f = (
            factor
            if not isinstance(factor, torch.Tensor)
            else factor.reshape(-1, *[1] * (table[n].dim() - 1))
        )
        table[n].mul_(f)
