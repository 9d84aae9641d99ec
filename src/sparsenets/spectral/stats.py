"""Counting what a training method costs: trainable parameters and optimizer-state size."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sparsenets.spectral.layer import SSTLinear


def trainable_parameters(model: nn.Module) -> int:
    """Number of scalar parameters with requires_grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def optimizer_state_numel(optimizer: Any) -> int:
    """Number of scalars held in the optimizer state (moments, projectors; step counters excluded)."""
    total = 0
    for st in getattr(optimizer, "state", {}).values():
        for key, val in st.items():
            if isinstance(val, torch.Tensor) and key != "step":
                total += val.numel()
    return total


def sst_state_formula(model: nn.Module, moments: int = 2) -> int:
    """Expected Adam state of an SST model: moments·Σ_layers(r(m+n) + k) + moments·(other trainable scalars)."""
    total = 0
    for mod in model.modules():
        if isinstance(mod, SSTLinear):
            total += mod.rank * (mod.in_features + mod.out_features) + mod.k
            total += mod.bias.numel() if mod.bias is not None else 0
    sst_ids = {id(p) for m in model.modules() if isinstance(m, SSTLinear) for p in m.parameters()}
    total += sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in sst_ids)
    return moments * total
