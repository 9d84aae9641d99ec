"""Lottery tickets for any nn.Module: IMP with rewinding, pruning-at-init controls, norm-matched dense, grokking times.

from sparsenets.masks import HoldMasks, attach_masks
from sparsenets.tickets import magnitude_scores, prune_by_scores, rewind_, snapshot
init = snapshot(model); train(model)                                  # your loop; θ0 kept
masks = prune_by_scores(magnitude_scores(snapshot(model)), keep=0.4)  # global: 40% kept (paper's k = 0.6)
attach_masks(model, masks, apply=False); rewind_(model, init); train(model, callbacks=[HoldMasks()])
"""

from sparsenets.tickets import adapter  # noqa: F401  (registers the comparison adapter)
from sparsenets.tickets.controls import CONTROL_KINDS, control_masks, member_norm_ratios
from sparsenets.tickets.grokking import first_crossing, grokking_times
from sparsenets.tickets.imp import Level, iterative_magnitude_pruning, prunable_names
from sparsenets.tickets.members import (
    member_accuracy,
    repeat_members,
    seeded_ensemble,
    stack_controls,
    stacked_ce_loss,
    stacked_mse_loss,
    train_members,
    train_until_grokked,
)
from sparsenets.tickets.prune import (
    SCOPES,
    kept_count,
    level_keep,
    magnitude_scores,
    prune_by_scores,
    prune_members,
    random_masks,
    shuffle_masks,
)
from sparsenets.tickets.rewind import SaveWeightsAt, norm_ratio, rewind_, scale_, snapshot
from sparsenets.tickets.scores import grasp_scores, snip_scores, synflow_masks

__all__ = [
    "CONTROL_KINDS",
    "SCOPES",
    "Level",
    "SaveWeightsAt",
    "control_masks",
    "first_crossing",
    "grasp_scores",
    "grokking_times",
    "iterative_magnitude_pruning",
    "kept_count",
    "level_keep",
    "magnitude_scores",
    "member_accuracy",
    "member_norm_ratios",
    "norm_ratio",
    "prunable_names",
    "prune_by_scores",
    "prune_members",
    "random_masks",
    "repeat_members",
    "rewind_",
    "scale_",
    "seeded_ensemble",
    "shuffle_masks",
    "snapshot",
    "snip_scores",
    "stack_controls",
    "stacked_ce_loss",
    "stacked_mse_loss",
    "synflow_masks",
    "train_members",
    "train_until_grokked",
]
