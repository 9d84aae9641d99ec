"""Shared pieces of the structured-sparsity tests: a small residual model and a short proximal training run."""

from __future__ import annotations

import torch
from torch import nn

from sparsenets.groups import coupled_layouts
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.prox import PROXES, topk_multipliers
from sparsenets.train import TensorBatches, Trainer


class TinyResNet(nn.Module):
    """conv-BN → two residual branches added → linear: channels must be tied across the add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.branch = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.head(torch.relu(h + self.branch(h)))


def train_prox(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, penalty: str, steps: int = 12
) -> ProxOptimizer:
    """A few proximal SGD steps (keep 0.5, λ 0.5, `penalty` a name in PROXES) with the Trainer; the optimizer."""
    blocks = [ProxBlock(lay, 0.5, 0.5, prox=PROXES[penalty]) for lay in coupled_layouts(model, x[:1])]
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    opt = ProxOptimizer(sgd, blocks, select=topk_multipliers, warmup_steps=4)
    trainer = Trainer(
        model,
        opt,
        TensorBatches(x, y, batch_size=16, seed=0),
        lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
        steps,
        device="cpu",
        progress=False,
    )
    trainer.fit()
    return opt
