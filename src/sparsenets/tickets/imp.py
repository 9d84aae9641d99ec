"""Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020), for any nn.Module.

    def train(model, callbacks):               # your loop: a fresh optimizer, Trainer(..., callbacks=callbacks)
        ...
    levels = iterative_magnitude_pruning(model, train, levels=3, keep_per_level=0.8, rewind_step=0)
    ticket = levels[-1].masks                  # the model now holds the last level's trained weights and masks

Level 0 trains dense. Level L keeps `keep_per_level` of the weights that survived level L−1 (by |θ| at the end
of L−1), rewinds the survivors to their exact values at `rewind_step` of level 0 and trains again with the mask
held. `levels=1` is one-shot pruning (the grokked ticket: keep_per_level=0.4, rewind to init).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.masks import HoldMasks, attach_masks, density, get_masks
from sparsenets.tickets.prune import level_keep, magnitude_scores, prune_by_scores
from sparsenets.tickets.rewind import SaveWeightsAt, rewind_, snapshot
from sparsenets.train.callbacks import Callback

TrainFn = Callable[[nn.Module, list[Callback]], object]


@dataclass
class Level:
    """One IMP level: its masks (None for the dense level 0), their density, and what `train` returned."""

    level: int
    masks: dict[str, torch.Tensor] | None
    density: float
    result: object


def prunable_names(module: nn.Module) -> list[str]:
    """Default prunable tensors: every parameter with at least two dimensions (weights, embeddings; not biases)."""
    return [n for n, p in module.named_parameters() if p.dim() >= 2]


def iterative_magnitude_pruning(
    module: nn.Module,
    train: TrainFn,
    *,
    levels: int,
    keep_per_level: float,
    rewind_step: int = 0,
    scope: str = "global",
    names: Sequence[str] | None = None,
    groups: Sequence[GroupLayout] | None = None,
) -> list[Level]:
    """Run IMP for `levels` pruning rounds after a dense level 0.

    Args:
        module: the network at initialization; trained in place.
        train: `train(module, callbacks)` trains with a fresh optimizer and passes `callbacks` to its Trainer.
        levels: pruning rounds (1 = one-shot).
        keep_per_level: fraction of the remaining weights kept per round, in (0, 1]; after L rounds
            keep_per_level^L of the weights are left.
        rewind_step: 0 resets survivors to θ0; t > 0 to their values after step t of level 0 (late rewinding).
        scope: "global" (one threshold over all tensors) or "layer".
        names: tensors to prune (default: `prunable_names`).
        groups: prune whole groups (`sparsenets.groups.GroupLayout`s, e.g. `GroupLayout.of_layer(model, "fc1")`)
            instead of single weights.

    Returns:
        One `Level` per round, level 0 first.
    """
    if levels < 1:
        raise SparsenetsError(f"IMP needs levels >= 1, got {levels}")
    level_keep(keep_per_level, 1)  # a bad budget fails before level 0 trains
    if rewind_step < 0:
        raise SparsenetsError(f"rewind_step must be >= 0, got {rewind_step}")
    names = list(names) if names is not None else prunable_names(module)
    saver = SaveWeightsAt([rewind_step])
    out = [Level(0, None, 1.0, train(module, [HoldMasks(), saver]))]
    if rewind_step not in saver.snapshots:
        raise SparsenetsError(
            f"level 0 never reached rewind_step {rewind_step}; train at least that many steps"
        )
    rewind_to = saver.snapshots[rewind_step]
    for level in range(1, levels + 1):
        masks = prune_and_rewind(module, names, level_keep(keep_per_level, level), rewind_to, scope, groups)
        result = train(module, [HoldMasks()])
        out.append(Level(level, {k: v.clone() for k, v in masks.items()}, density(masks), result))
    return out


def prune_and_rewind(
    module: nn.Module,
    names: Sequence[str],
    keep: float,
    rewind_to: dict[str, torch.Tensor],
    scope: str = "global",
    groups: Sequence[GroupLayout] | None = None,
) -> dict[str, torch.Tensor]:
    """One IMP level before its retraining: keep `keep` of the tensors `names` by |θ| (what earlier masks pruned
    stays pruned), attach the masks and rewind the survivors to `rewind_to`. Returns the masks."""
    current = get_masks(module)
    masks = prune_by_scores(
        magnitude_scores(snapshot(module, names)),
        keep,
        scope=scope,
        current={n: current[n] for n in names} if current else None,
        groups=groups,
    )
    attach_masks(module, masks, apply=False)
    rewind_(module, rewind_to)
    return masks
