"""A plain multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten, then Linear → ReLU (→ Dropout) per hidden layer, then a Linear head.

    Args:
        in_features: size of the flattened input.
        hidden: widths of the hidden layers.
        out_features: number of outputs.
        dropout: dropout probability after each hidden activation.
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *in_shape) → (B, out_features) logits."""
        return self.net(x)
