"""Turn importance scores into masks with an exact number of survivors: global or per-layer, element or group.

All functions are pure: `{name: tensor}` in, `{name: bool tensor}` out. A higher score means more worth keeping.
Counts are exact (top-k, ties broken by position), so a requested sparsity is met to within one weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import torch

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.prox import topk_mask

Tensors = Mapping[str, torch.Tensor]
SCOPES = ("global", "layer")


class Groups(Protocol):
    """How weights are tied into groups that live or die together (a future `sparsenets.groups` layout fits here)."""

    def reduce(self, scores: Tensors) -> dict[str, torch.Tensor]:
        """Element scores → one score per group: name → (G_name,)."""
        ...

    def expand(self, keep: Tensors) -> dict[str, torch.Tensor]:
        """Per-group bool keep (G_name,) → element masks of the parameters' shapes."""
        ...


class RowGroups:
    """One group per slice along dim 0 (a Linear output neuron, a conv filter, an embedding row); score = sum.

    Args:
        shapes: parameter name → shape, used to expand group decisions back to elements.
    """

    def __init__(self, shapes: Mapping[str, torch.Size | tuple[int, ...]]) -> None:
        self.shapes = {k: tuple(v) for k, v in shapes.items()}

    def reduce(self, scores: Tensors) -> dict[str, torch.Tensor]:
        """name → (rows,) sum of the element scores of each row."""
        return {k: v.reshape(v.shape[0], -1).sum(1) for k, v in scores.items()}

    def expand(self, keep: Tensors) -> dict[str, torch.Tensor]:
        """name → bool mask of the parameter's shape, whole rows kept or pruned."""
        return {
            k: v.reshape(-1, *([1] * (len(self.shapes[k]) - 1))).expand(self.shapes[k]).clone()
            for k, v in keep.items()
        }


class LayoutGroups:
    """Groups from `sparsenets.groups` layouts (rows, channels, coupled conv+BN+next-layer slices); score = sum.

    Each layout is one scope unit for `scope="layer"`; its group score sums the element scores of all its slices
    (parameters missing from the scores contribute nothing), and a pruned group is removed from every slice.

    Args:
        layouts: the layouts, e.g. `[GroupLayout.of_layer(model, "fc1", "filter")]` or `coupled_layouts(...)`.
    """

    def __init__(self, layouts: Sequence[GroupLayout]) -> None:
        self.layouts = {(lay.name or f"layout{i}") + f"#{i}": lay for i, lay in enumerate(layouts)}

    def reduce(self, scores: Tensors) -> dict[str, torch.Tensor]:
        """layout key → (m,) summed element scores per group."""
        out = {}
        for key, lay in self.layouts.items():
            acc = torch.zeros(lay.m + 1, dtype=torch.float64)  # slot m: positions in no group
            for mb in lay.members:
                if mb.name not in scores:
                    continue
                x = scores[mb.name].detach().cpu().double().reshape(mb.shape2)
                dims = [d for d in range(x.dim()) if d != mb.axis]
                mb.add_to(acc, x.sum(dim=dims) if dims else x)
            out[key] = acc[: lay.m]
        return out

    def expand(self, keep: Tensors) -> dict[str, torch.Tensor]:
        """Element masks of every touched parameter (a slice is kept only if all its layouts keep it)."""
        masks: dict[str, torch.Tensor] = {}
        for key, lay in self.layouts.items():
            for name, m in lay.masks(keep[key]).items():
                masks[name] = masks[name] & m if name in masks else m
        return masks


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise SparsenetsError(f"pruning rate must be in [0, 1) (the fraction of weights removed), got {rate}")


def prune_by_scores(
    scores: Tensors,
    rate: float,
    *,
    scope: str = "global",
    current: Tensors | None = None,
    groups: Groups | None = None,
) -> dict[str, torch.Tensor]:
    """Keep the top (1 − rate) fraction of weights (or groups) by score.

    Args:
        scores: name → float tensor of the parameter's shape (higher = keep).
        rate: fraction removed, of all weights in `scores` (global) or of each tensor (layer); in [0, 1).
        scope: "global" ranks all tensors together; "layer" ranks each tensor on its own.
        current: masks already in force (iterative pruning): what they pruned stays pruned.
        groups: rank groups instead of elements (e.g. `RowGroups`); `rate` then counts groups.

    Returns:
        name → bool mask (True = kept) with exactly round((1 − rate)·n) survivors per scope unit.
    """
    _check_rate(rate)
    if scope not in SCOPES:
        raise SparsenetsError(f"scope must be one of {SCOPES}, got {scope!r}")
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
    if groups is not None:
        s = {k: v.nan_to_num(neginf=-1e300) for k, v in s.items()}
        s = groups.reduce(s)
    if scope == "global":
        names = list(s)
        flat = torch.cat([s[k].reshape(-1) for k in names])
        keep = topk_mask(flat, round((1.0 - rate) * flat.numel()))
        out, i = {}, 0
        for k in names:
            n = s[k].numel()
            out[k] = keep[i : i + n].reshape(s[k].shape)
            i += n
    else:
        out = {
            k: topk_mask(v.reshape(-1), round((1.0 - rate) * v.numel())).reshape(v.shape)
            for k, v in s.items()
        }
    return groups.expand(out) if groups is not None else out


def prune_members(
    scores: Tensors,
    rate: float,
    *,
    scope: str = "global",
    current: Tensors | None = None,
    groups: Groups | None = None,
) -> dict[str, torch.Tensor]:
    """`prune_by_scores` for stacked independent networks: dim 0 of every tensor indexes a network (E, ...).

    Each network is pruned on its own (its own global threshold); returns name → (E, ...) bool masks.
    """
    sizes = {v.shape[0] for v in scores.values()}
    if len(sizes) != 1:
        raise SparsenetsError(f"stacked scores disagree on the number of networks (dim 0): {sorted(sizes)}")
    per = [
        prune_by_scores(
            {k: v[e] for k, v in scores.items()},
            rate,
            scope=scope,
            current=None if current is None else {k: v[e] for k, v in current.items()},
            groups=groups,
        )
        for e in range(sizes.pop())
    ]
    return {k: torch.stack([m[k] for m in per]) for k in scores}


def magnitude_scores(params: Tensors) -> dict[str, torch.Tensor]:
    """|θ| for each tensor (the lottery-ticket criterion)."""
    return {k: v.detach().abs() for k, v in params.items()}


def random_masks(
    shapes: Mapping[str, torch.Size | tuple[int, ...]],
    rate: float,
    *,
    scope: str = "global",
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Uniformly random masks with exactly the survivors `prune_by_scores` would keep at this rate and scope."""
    return prune_by_scores(
        {k: torch.rand(tuple(v), generator=generator) for k, v in shapes.items()}, rate, scope=scope
    )


def shuffle_masks(
    masks: Tensors, *, scope: str = "layer", generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Randomly permute kept positions: within each tensor ("layer", per-layer density kept) or across all ("global")."""
    if scope not in SCOPES:
        raise SparsenetsError(f"scope must be one of {SCOPES}, got {scope!r}")
    if scope == "layer":
        return {
            k: m.reshape(-1)[torch.randperm(m.numel(), generator=generator)].reshape(m.shape)
            for k, m in masks.items()
        }
    names = list(masks)
    flat = torch.cat([masks[k].reshape(-1) for k in names])
    flat = flat[torch.randperm(flat.numel(), generator=generator)]
    out, i = {}, 0
    for k in names:
        n = masks[k].numel()
        out[k] = flat[i : i + n].reshape(masks[k].shape)
        i += n
    return out


def level_rate(rate_per_level: float, level: int) -> float:
    """Total fraction removed after `level` rounds that each remove `rate_per_level` of the remaining weights."""
    _check_rate(rate_per_level)
    return 1.0 - (1.0 - rate_per_level) ** level
