"""Structured proximal operators: tensor in, tensor out; each is "group norms → one multiplier per group".

z = wgsef_prox(w.reshape(w.shape[0], -1), k=16, tau=lr * lam)     # filters of a conv weight
"""

from sparsenets.prox.layout import Layout, group_norms, resolve_layout, scale_groups
from sparsenets.prox.registry import PROXES
from sparsenets.prox.roots import root_bisect, root_select, root_sweep, root_sweep_batched, root_sweep_tensor
from sparsenets.prox.simple import (
    group_lasso_multipliers,
    group_lasso_prox,
    hard_topk_prox,
    l1_prox,
    topk_mask,
    topk_multipliers,
)
from sparsenets.prox.wgsef import (
    wgsef_multipliers,
    wgsef_multipliers_batched,
    wgsef_prox,
    wgsef_value,
    wgsef_value_from_norms,
)

__all__ = [
    "PROXES",
    "Layout",
    "group_lasso_multipliers",
    "group_lasso_prox",
    "group_norms",
    "hard_topk_prox",
    "l1_prox",
    "resolve_layout",
    "root_bisect",
    "root_select",
    "root_sweep",
    "root_sweep_batched",
    "root_sweep_tensor",
    "scale_groups",
    "topk_mask",
    "topk_multipliers",
    "wgsef_multipliers",
    "wgsef_multipliers_batched",
    "wgsef_prox",
    "wgsef_value",
    "wgsef_value_from_norms",
]
