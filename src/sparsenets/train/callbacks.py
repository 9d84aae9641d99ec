"""The hooks through which methods extend the one training loop (prox steps, mask holding, SST rounds, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from sparsenets.train.loop import Trainer


@dataclass
class TrainState:
    """What callbacks may read and change during `Trainer.fit`.

    Attributes:
        step: number of optimizer steps taken so far (the step being run, during a step).
        module: the bare model (not the DDP wrapper): callbacks edit its parameters in place.
        trainer: the running trainer (optimizer, scheduler, run directory).
        last_loss: training loss of the latest step (a 0-d tensor), None before the first.
        extra: free-form values a callback shares with others or with the experiment.
    """

    step: int
    module: torch.nn.Module
    trainer: Trainer
    last_loss: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class: override the hooks you need. State that must survive a resume goes in `state_dict`."""

    def on_train_start(self, state: TrainState) -> None:
        """Called once before the first step (also after a resume)."""

    def after_backward(self, state: TrainState) -> None:
        """Gradients are ready and not yet applied (mask them, clip them, read them)."""

    def after_step(self, state: TrainState) -> None:
        """The optimizer has stepped (apply a proximal map, re-mask weights, resample a basis)."""

    def on_eval(self, state: TrainState, metrics: dict[str, float]) -> None:
        """An evaluation finished; `metrics` may be extended in place before it is logged."""

    def on_train_end(self, state: TrainState) -> None:
        """Called once after the last step."""

    def state_dict(self) -> dict[str, Any]:
        """Resumable state (tensors and JSON values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
