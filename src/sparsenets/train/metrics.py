"""Evaluation helpers shared by experiments."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000
) -> dict[str, float]:
    """Accuracy and mean cross-entropy of `model` on (x, y).

    Args:
        model: maps (B, ...) inputs to (B, C) logits; evaluated on the device of its parameters.
        x: inputs of shape (N, ...).
        y: integer labels of shape (N,).

    Returns:
        {"accuracy": fraction correct, "loss": mean cross-entropy}.
    """
    device = next(model.parameters()).device
    correct, loss_sum = 0, 0.0
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(-1) == yb).sum())
    return {"accuracy": correct / x.shape[0], "loss": loss_sum / x.shape[0]}
