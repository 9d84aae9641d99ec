"""Proximal training: wrap any torch optimizer so each step is followed by a structured prox per block.

blocks = [ProxBlock(layout, k=0.25, lam=1e-3) for layout in coupled_layouts(model, x[:1])]  # round_to=8: k a multiple of 8
opt = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), blocks, warmup_steps=200)
...train...; opt.finalize()          # exactly k groups per block; then opt.hold_mask() to fine-tune
"""

from sparsenets.optim.proximal import (
    ProxBlock,
    ProxFn,
    ProxOptimizer,
    SelectFn,
    check_keep,
    decay_free_groups,
    kept_count,
)

__all__ = [
    "ProxBlock",
    "ProxFn",
    "ProxOptimizer",
    "SelectFn",
    "check_keep",
    "decay_free_groups",
    "kept_count",
]
