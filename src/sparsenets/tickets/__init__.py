"""Lottery tickets for any nn.Module: IMP with rewinding, pruning-at-init controls, norm-matched dense, grokking times.

from sparsenets.masks import HoldMasks, attach_masks
from sparsenets.tickets import magnitude_scores, prune_by_scores, rewind_
masks = prune_by_scores(magnitude_scores(trained_weights), rate=0.6)   # global, 60% removed
attach_masks(model, masks, apply=False); rewind_(model, init_weights)  # survivors back to θ0
Trainer(model, ..., callbacks=[HoldMasks()]).fit()                      # pruned weights stay exactly zero
"""

from sparsenets.tickets.grokking import first_crossing, grokking_times
from sparsenets.tickets.imp import Level, iterative_magnitude_pruning, prunable_names
from sparsenets.tickets.prune import (
    Groups,
    LayoutGroups,
    RowGroups,
    level_rate,
    magnitude_scores,
    prune_by_scores,
    prune_members,
    random_masks,
    shuffle_masks,
)
from sparsenets.tickets.rewind import SaveWeightsAt, norm_ratio, rewind_, scale_, snapshot
from sparsenets.tickets.scores import grasp_scores, snip_scores, synflow_masks

__all__ = [
    "Groups",
    "LayoutGroups",
    "Level",
    "RowGroups",
    "SaveWeightsAt",
    "first_crossing",
    "grasp_scores",
    "grokking_times",
    "iterative_magnitude_pruning",
    "level_rate",
    "magnitude_scores",
    "norm_ratio",
    "prunable_names",
    "prune_by_scores",
    "prune_members",
    "random_masks",
    "rewind_",
    "scale_",
    "shuffle_masks",
    "snapshot",
    "snip_scores",
    "synflow_masks",
]
