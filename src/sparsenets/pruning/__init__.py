"""Structured pruning building blocks that every compression method shares (core: knows no method).

Three layers, as in Torch-Pruning: groups (`sparsenets.groups`: coupled layouts from the dependency graph) →
blocks and baselines here (`coupled_blocks`, magnitude, group lasso, Torch-Pruning GroupNorm) → the protocol
(`finish_pruning`: exact selection → compact → fine-tune the compacted model → measure).

blocks = magnitude_blocks(model, x[:1], keep=0.25)            # top-k coupled groups by norm, no penalty
opt = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), blocks)
small, record = finish_pruning(model, opt, x[:1], evaluate=my_accuracy, finetune=my_finetune)
"""

from sparsenets.pruning import adapters  # noqa: F401  (registers the baselines)
from sparsenets.pruning.adapter import ADAPTERS, Adapter, Sparsified, SparsifyContext, register_adapter
from sparsenets.pruning.baselines import (
    GroupNormRegularizer,
    coupled_blocks,
    group_lasso_blocks,
    magnitude_blocks,
    tp_groupnorm_pruner,
)
from sparsenets.pruning.protocol import compact_checked, finish_pruning, kept_groups

__all__ = [
    "ADAPTERS",
    "Adapter",
    "GroupNormRegularizer",
    "Sparsified",
    "SparsifyContext",
    "compact_checked",
    "coupled_blocks",
    "finish_pruning",
    "group_lasso_blocks",
    "kept_groups",
    "magnitude_blocks",
    "register_adapter",
    "tp_groupnorm_pruner",
]
