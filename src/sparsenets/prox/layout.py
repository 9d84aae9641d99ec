"""Group layouts of one tensor for the prox functions: every prox is "group norms → one multiplier per group".

A layout is inferred from `x` and `groups` (see `resolve_layout`):
- `groups=None`, x 1-D: every element is a group (elementwise; m = n);
- `groups=None`, x with ≥ 2 dims: each slice x[i] is a group (rows of a weight reshaped to (out, -1));
- `groups` an integer tensor shaped like x: group ids in 0..m-1 (arbitrary groups; unused ids are zero groups);
- `groups` a `sparsenets.groups.GroupLayout` over one tensor shaped like x (e.g. `GroupLayout.of_tensor`): the
  library's one group vocabulary, resolved to rows when its groups are x's rows, else to ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from sparsenets.errors import SparsenetsError

if TYPE_CHECKING:  # imported on use: groups pulls in Torch-Pruning, which plain prox calls never need
    from sparsenets.groups import GroupLayout


@dataclass(frozen=True)
class Layout:
    """A resolved layout: `kind` in {"elements", "rows", "ids"}, `m` groups, `ids` for kind "ids"."""

    kind: str
    m: int
    ids: torch.Tensor | None = None


def resolve_layout(x: torch.Tensor, groups: torch.Tensor | GroupLayout | None = None) -> Layout:
    """Infer the layout of `x` (any shape) from `groups` (None, integer ids shaped like x, or a GroupLayout)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise SparsenetsError(
            "x must be a floating-point torch tensor; convert it with x.float() or x.double()"
        )
    if x.numel() == 0:
        raise SparsenetsError("x is empty: a prox needs at least one group")
    if groups is None:
        if x.dim() <= 1:
            return Layout("elements", x.numel())
        return Layout("rows", x.shape[0])
    if groups is not None and not isinstance(groups, torch.Tensor):
        from sparsenets.groups import GroupLayout

        if isinstance(groups, GroupLayout):
            return _from_group_layout(x, groups)
    if not isinstance(groups, torch.Tensor) or groups.is_floating_point() or groups.dtype == torch.bool:
        raise SparsenetsError("groups must be an integer tensor of group ids (0..m-1) shaped like x, or None")
    if groups.shape != x.shape:
        raise SparsenetsError(
            f"groups has shape {tuple(groups.shape)} but x has {tuple(x.shape)}: give one group id per entry of x"
        )
    ids = groups.reshape(-1).to(device=x.device, dtype=torch.long)
    lo, hi = ids.aminmax()
    if int(lo) < 0:
        raise SparsenetsError(f"group ids must be >= 0; found {int(lo)}")
    return Layout("ids", int(hi) + 1, ids)


def _from_group_layout(x: torch.Tensor, layout: GroupLayout) -> Layout:
    """A one-tensor GroupLayout as a prox layout: "rows" when group i is x's slice i, else per-element ids."""
    if len(layout.members) != 1 or layout.members[0].param.numel() != x.numel():
        raise SparsenetsError(
            f"a prox takes a GroupLayout over one tensor shaped like x ({x.numel()} entries); {layout!r} spans "
            "other tensors: apply it with layout.norms() and layout.scale_(multipliers) instead"
        )
    mb = layout.members[0]
    if bool((mb.ids < 0).any()):
        raise SparsenetsError(
            f"{layout!r} leaves some entries of x in no group; a prox needs every entry grouped"
        )
    if (
        mb.axis == 0
        and mb.route(layout.m, torch.device("cpu")) is None
        and x.dim() >= 1
        and x.shape[0] == layout.m
    ):
        return Layout("rows", layout.m) if x.dim() >= 2 else Layout("elements", layout.m)
    shape = [1] * len(mb.shape2)
    shape[mb.axis] = mb.shape2[mb.axis]
    ids = mb.ids.view(shape).expand(mb.shape2).reshape(-1).to(device=x.device, dtype=torch.long)
    return Layout("ids", layout.m, ids)


def group_norms(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(m,) Euclidean norm of each group of `x`, in x's dtype (elements: |x| flattened)."""
    if layout.kind == "elements":
        return x.reshape(-1).abs()
    if layout.kind == "rows":
        return torch.linalg.vector_norm(x.reshape(layout.m, -1), dim=1)
    sq = torch.zeros(layout.m, dtype=x.dtype, device=x.device)
    sq.index_add_(0, layout.ids, x.reshape(-1).square())
    return sq.sqrt_()


def scale_groups(
    x: torch.Tensor, c: torch.Tensor, layout: Layout, out: torch.Tensor | None = None
) -> torch.Tensor:
    """x with group j multiplied by c[j] (c: (m,)): a new tensor shaped like x, or written into `out`
    (a tensor shaped like x, possibly x itself) and returned."""
    c = c.to(x.dtype)
    target = torch.empty_like(x) if out is None else check_out(out, x)
    if layout.kind == "elements":
        torch.mul(x.reshape(-1), c, out=target.view(-1))
    elif layout.kind == "rows":
        torch.mul(x.reshape(layout.m, -1), c[:, None], out=target.view(layout.m, -1))
    else:
        torch.mul(x.reshape(-1), c.index_select(0, layout.ids), out=target.view(-1))
    return target


def check_out(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`out` must be a contiguous tensor with x's shape, dtype and device (it receives the result)."""
    if (
        not isinstance(out, torch.Tensor)
        or out.shape != x.shape
        or out.dtype != x.dtype
        or out.device != x.device
    ):
        raise SparsenetsError(
            "out must be a tensor with x's shape, dtype and device (e.g. torch.empty_like(x) or x itself); got "
            + (
                f"{tuple(out.shape)} {out.dtype} on {out.device}"
                if isinstance(out, torch.Tensor)
                else repr(out)
            )
        )
    if not out.is_contiguous():
        raise SparsenetsError("out must be contiguous; pass out.contiguous() or a fresh torch.empty_like(x)")
    return out
