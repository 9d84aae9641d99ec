"""Model definitions shared by experiments: plain `nn.Module`s, readable top to bottom."""

from sparsenets.models.mlp import MLP

__all__ = ["MLP"]
