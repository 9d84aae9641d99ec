"""`CompressionTask`: the data, model and training recipe every adapter is run on, and its one training loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.train import Callback, TensorBatches, Trainer
from sparsenets.train.metrics import evaluate_classifier


@dataclass
class TrainRecipe:
    """The training recipe every compression method shares (SGD with momentum 0.9 throughout).

    Attributes:
        epochs: dense training epochs.
        sparse_epochs: epochs of every adapter's sparsifying phase (penalty training; the one-shot methods
            fine-tune this much longer, so every method trains epochs + sparse_epochs + finetune_epochs).
        finetune_epochs: epochs of the fine-tune after the exact selection.
        batch_size, lr, finetune_lr, weight_decay: the SGD recipe.
    """

    epochs: int = 3
    sparse_epochs: int = 1
    finetune_epochs: int = 1
    batch_size: int = 128
    lr: float = 0.05
    finetune_lr: float = 0.01
    weight_decay: float = 5e-4


@dataclass(kw_only=True)
class CompressionTask(TrainRecipe):
    """One model on one data set with the shared `TrainRecipe` (all fields by keyword).

    Attributes:
        model_name: the model's label in records ("lenet5", "vgg", ...).
        dataset: the data set's label in records.
        make_model: builds the model at its initialisation (call after seeding).
        train: (images (N, C, H, W), labels (N,)) training data.
        test: (images (M, C, H, W), labels (M,)) held-out data for accuracy.
        options: per-method hyper-parameters passed to adapters (e.g. {"wgsef_lam": 0.005}).
        device: where training runs (measurements always on the CPU).
        progress: progress bars on training loops.
        latency_repeat: timed forward passes per model and batch size.
    """

    model_name: str
    dataset: str
    make_model: Callable[[], nn.Module]
    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    progress: bool = False
    latency_repeat: int = 20

    def recipe(self) -> TrainRecipe:
        """The recipe part of the task."""
        return TrainRecipe(**{f: getattr(self, f) for f in TrainRecipe.__dataclass_fields__})

    @property
    def example(self) -> torch.Tensor:
        """(1, C, H, W) one test image."""
        return self.test[0][:1]

    def fit(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        epochs: int,
        callbacks: Sequence[Callback] = (),
        seed: int = 0,
    ) -> None:
        """Train `model` in place for `epochs` epochs of cross-entropy (batches drawn with `seed`)."""
        batches = TensorBatches(*self.train, batch_size=self.batch_size, seed=seed)
        steps = max(1, epochs * batches.steps_per_epoch)
        Trainer(
            model,
            optimizer,
            batches,
            lambda m, b: F.cross_entropy(m(b[0]), b[1]),
            steps,
            callbacks=callbacks,
            device=self.device,
            progress=self.progress,
            log_every=10**9,
        ).fit()

    def accuracy(self, model: nn.Module) -> float:
        """Test accuracy in percent (eval mode, restored after)."""
        was = model.training
        model.eval()
        acc = 100.0 * evaluate_classifier(model, *self.test)["accuracy"]
        model.train(was)
        return acc

    def sgd(self, model: nn.Module, lr: float) -> torch.optim.SGD:
        """The recipe's SGD over all of `model`'s parameters."""
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=self.weight_decay)
