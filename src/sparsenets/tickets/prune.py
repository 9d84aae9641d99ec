"""Turn importance scores into masks with an exact number of survivors: global or per-layer, element or group.

All functions are pure: `{name: tensor}` in, `{name: bool tensor}` out. A higher score means more worth keeping.
A budget is `keep`, as everywhere in the library: a float in (0, 1] is the kept fraction, an int >= 1 a count.
keep = 1 − pruning rate (the grokking-tickets paper's k: k = 0.6 prunes 60%, i.e. keep=0.4); Torch-Pruning's
`pruning_ratio` is the same 1 − keep. Counts are exact (top-k, ties broken by position): round(keep·n) survivors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.optim import check_keep, kept_count
from sparsenets.prox import topk_mask

Tensors = Mapping[str, torch.Tensor]
SCOPES = ("global", "layer")


def _count(n: int, keep: float | int) -> int:
    """Survivors of n entries: round(keep·n) for a ratio (possibly 0: a tiny tensor may go), at most n for a
    count (a per-layer count larger than a tensor keeps all of it)."""
    return kept_count(n, min(keep, n) if isinstance(keep, int) else keep, minimum=0)


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise SparsenetsError(f"scope must be one of {SCOPES}, got {scope!r}")


def _top(units: Mapping[str, torch.Tensor], keep: float | int, scope: str) -> dict[str, torch.Tensor]:
    """Per unit (one tensor, or one layout's (m,) group scores): bool keep of the unit's shape."""
    if scope == "layer":
        return {k: topk_mask(v, _count(v.numel(), keep)).reshape(v.shape) for k, v in units.items()}
    flat = torch.cat([v.reshape(-1) for v in units.values()])
    return _split_like(topk_mask(flat, _count(flat.numel(), keep)), units)


def _split_like(flat: torch.Tensor, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A flat (Σ n_k,) tensor cut back into name → tensor of each `like[name]`'s shape, in `like`'s order."""
    out, i = {}, 0
    for k, v in like.items():
        out[k] = flat[i : i + v.numel()].reshape(v.shape)
        i += v.numel()
    return out


def _expand(layouts: Sequence[GroupLayout], kept: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Element masks of every parameter the layouts touch; a slice is kept only if all its layouts keep it."""
    masks: dict[str, torch.Tensor] = {}
    for lay, k in zip(layouts, kept):
        for name, m in lay.masks(k).items():
            masks[name] = masks[name] & m if name in masks else m
    return masks


def prune_by_scores(
    scores: Tensors,
    keep: float | int,
    *,
    scope: str = "global",
    current: Tensors | None = None,
    groups: Sequence[GroupLayout] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep the top `keep` of the weights (or groups) by score.

    Args:
        scores: name → float tensor of the parameter's shape (higher = keep).
        keep: the budget (module docstring): a fraction kept in (0, 1] or a count >= 1, of all weights in
            `scores` (global) or of each tensor (layer).
        scope: "global" ranks all tensors together; "layer" ranks each tensor (or each layout) on its own.
        current: masks already in force (iterative pruning): what they pruned stays pruned.
        groups: rank whole groups instead of elements, e.g. `[GroupLayout.of_tensor(n, t, "filter")]` (rows) or
            `coupled_layouts(...)`; a group's score is the sum of its element scores (names missing from
            `scores` add nothing), `keep` then counts groups and each layout is one "layer" unit.

    Returns:
        name → bool mask (True = kept) with exactly round(keep·n) survivors per scope unit; with `groups`, one
        mask for every parameter the layouts touch.
    """
    check_keep(keep)  # validate before any work
    _check_scope(scope)
    if not scores:
        raise SparsenetsError("prune_by_scores needs at least one score tensor")
    s = {k: v.detach().double() for k, v in scores.items()}
    if current is not None:
        missing = set(s) - set(current)
        if missing and len(missing) != len(s):
            raise SparsenetsError(
                f"current masks lack {sorted(missing)}; pass masks for all or none of the tensors"
            )
        # already-pruned entries rank below everything, so they are the first to go
        s = {
            k: v.masked_fill(~current[k].to(torch.bool), float("-inf")) if k in current else v
            for k, v in s.items()
        }
    if groups is None:
        return _top(s, keep, scope)
    layouts = list(groups)
    if not layouts:
        raise SparsenetsError("groups is empty; pass at least one GroupLayout (or None for single weights)")
    # a finite floor, so a group's sum still ranks partly pruned groups above fully pruned ones
    s = {k: v.nan_to_num(neginf=-1e300) for k, v in s.items()}
    units = {str(i): lay.reduce(s) for i, lay in enumerate(layouts)}
    kept = _top(units, keep, scope)
    return _expand(layouts, [kept[str(i)] for i in range(len(layouts))])


def prune_members(
    scores: Tensors, keep: float | int, *, current: Tensors | None = None, **options: Any
) -> dict[str, torch.Tensor]:
    """`prune_by_scores` for stacked independent networks: dim 0 of every tensor indexes a network (E, ...).

    Each network is pruned on its own (its own threshold); `options` are `prune_by_scores`'s `scope` and
    `groups` (layouts over one network's tensors, shapes without the leading E). Returns name → (E, ...) bool
    masks.
    """
    sizes = {v.shape[0] for v in scores.values()}
    if len(sizes) != 1:
        raise SparsenetsError(f"stacked scores disagree on the number of networks (dim 0): {sorted(sizes)}")
    per = [
        prune_by_scores(
            {k: v[e] for k, v in scores.items()},
            keep,
            current=None if current is None else {k: v[e] for k, v in current.items()},
            **options,
        )
        for e in range(sizes.pop())
    ]
    return {k: torch.stack([m[k] for m in per]) for k in per[0]}


def magnitude_scores(params: Tensors) -> dict[str, torch.Tensor]:
    """|θ| for each tensor (the lottery-ticket criterion): name → tensor of the parameter's shape."""
    return {k: v.detach().abs() for k, v in params.items()}


def random_masks(
    shapes: Mapping[str, torch.Size | tuple[int, ...]],
    keep: float | int,
    *,
    scope: str = "global",
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Uniformly random masks with exactly the survivors `prune_by_scores` would keep at this budget and scope.

    Returns name → bool mask of `shapes[name]`.
    """
    return prune_by_scores(
        {k: torch.rand(tuple(v), generator=generator) for k, v in shapes.items()}, keep, scope=scope
    )


def shuffle_masks(
    masks: Tensors, *, scope: str = "layer", generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Randomly permute kept positions: within each tensor ("layer", per-layer density kept) or across all
    ("global"). Returns name → bool mask of the same shape."""
    _check_scope(scope)
    if scope == "layer":
        return {
            k: m.reshape(-1)[torch.randperm(m.numel(), generator=generator)].reshape(m.shape)
            for k, m in masks.items()
        }
    flat = torch.cat([m.reshape(-1) for m in masks.values()])
    return _split_like(flat[torch.randperm(flat.numel(), generator=generator)], masks)


def level_keep(keep_per_level: float, level: int) -> float:
    """Fraction kept after `level` rounds that each keep `keep_per_level` of the remaining weights:
    keep_per_level ** level."""
    if isinstance(keep_per_level, int) or not 0.0 < keep_per_level <= 1.0:
        raise SparsenetsError(f"keep_per_level must be a fraction in (0, 1]; got {keep_per_level!r}")
    return keep_per_level**level
