"""Counting what a training method costs: trainable parameters, optimizer-state size, training-state bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from sparsenets.spectral.layer import SSTLinear


def trainable_parameters(model: nn.Module) -> int:
    """Number of scalar parameters with requires_grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _state_tensors(optimizer: Any) -> Iterator[torch.Tensor]:
    """Every tensor of the optimizer state except step counters (a tensor in some optimizers)."""
    for st in getattr(optimizer, "state", {}).values():
        for key, val in st.items():
            if isinstance(val, torch.Tensor) and key != "step":
                yield val


def optimizer_state_numel(optimizer: Any) -> int:
    """Number of scalars held in the optimizer state (moments, projectors; step counters excluded)."""
    return sum(t.numel() for t in _state_tensors(optimizer))


def training_state_bytes(model: nn.Module, optimizer: Any) -> int:
    """Bytes of weights + buffers + gradients (one per trainable parameter) + optimizer state tensors."""
    weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights + grads + sum(t.numel() * t.element_size() for t in _state_tensors(optimizer))


def steady_costs(costs: dict[str, Any]) -> tuple[int, int]:
    """(Adam state scalars, training-state bytes) in the steady state of an fp32 Adam run.

    Args:
        costs: a `cost_summary` (keys "trainable_params", "optimizer_state", "train_state_bytes"), read at the end
            of a run.

    SST and ReLoRA* drop optimizer state at resamples/merges, and a run may end on one, so the state read at the
    end can be partial; with Adam every trainable scalar holds two moments once it has stepped (checked in the
    tests and measured directly in benchmarks/bench_sst.py), hence 2 × trainable parameters.
    """
    state = 2 * int(costs["trainable_params"])
    return state, int(costs["train_state_bytes"]) - 4 * int(costs["optimizer_state"]) + 4 * state


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
