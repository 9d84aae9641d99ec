"""Group layouts over a model's parameters: which slices live or die together, with vectorised norms and scaling.

A `GroupLayout` holds m groups; each of its members is one parameter viewed as `shape2`, whose positions along
`axis` belong to groups `ids` (-1: no group). Kinds for one layer: element, filter/row, channel/column,
filter-shape, whole layer (`GroupLayout.of_layer`). Coupled layouts (a conv filter with its BatchNorm γ/β and
the next layer's matching input channel; channels tied across residual adds) come from Torch-Pruning's
dependency graph (`coupled_layouts`). Everything structured (WGSEF, group lasso, top-k, compaction) then
speaks two vectorised operations: `norms()` → (m,) and `scale_(c)` with c: (m,).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from sparsenets.errors import SparsenetsError

KINDS = ("element", "filter", "channel", "shape", "layer")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class Member:
    """One parameter's share of a layout: `param.view(shape2)` has its groups along `axis` (ids: -1 = none).

    Per-position values reach their groups (and group values their positions) through `route`, which is built
    once per device: no boolean indexing in a training step, so no GPU sync and few kernel launches.
    """

    name: str
    param: nn.Parameter
    shape2: tuple[int, ...]
    axis: int
    ids: torch.Tensor
    _routes: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _routes_of: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def route(self, m: int, device: torch.device) -> torch.Tensor | None:
        """(n_axis,) group of each position on `device`, positions in no group sent to the spare slot m;
        None when position i is simply group i of m (then no gather or scatter is needed)."""
        if self._routes_of is not self.ids:  # ids were replaced (a residual merge): rebuild
            self._routes, self._routes_of = {}, self.ids
        key = (str(device), m)
        if key not in self._routes:
            ids = self.ids.cpu()
            plain = ids.numel() == m and bool(torch.equal(ids, torch.arange(m)))
            self._routes[key] = None if plain else torch.where(ids >= 0, ids, m).to(device)
        return self._routes[key]

    def add_to(self, out: torch.Tensor, per_pos: torch.Tensor) -> None:
        """out (m + 1,) += per_pos (n_axis,) summed into groups (slot m collects the positions in no group)."""
        route = self.route(out.numel() - 1, out.device)
        if route is None:
            out[:-1].add_(per_pos)
        else:
            out.index_add_(0, route, per_pos)

    def spread(self, ext: torch.Tensor) -> torch.Tensor:
        """Group values ext (m + 1,), ext[m] for positions in no group → per position, shaped to broadcast over
        `param.view(shape2)`."""
        route = self.route(ext.numel() - 1, ext.device)
        per_pos = ext[:-1] if route is None else ext.index_select(0, route)
        return per_pos.view(self._bshape())

    def _bshape(self) -> list[int]:
        shape = [1] * len(self.shape2)
        shape[self.axis] = self.shape2[self.axis]
        return shape


class GroupLayout:
    """m groups over slices of one or more parameters.

    Args:
        members: the parameter slices (see `Member`).
        m: number of groups.
        name: a label (the root layer's name for coupled layouts).
    """

    def __init__(self, members: Sequence[Member], m: int, name: str = "") -> None:
        if m < 1 or not members:
            raise SparsenetsError(f"layout {name!r} has no groups; pick a layer with parameters")
        self.members, self.m, self.name = list(members), int(m), name

    def __repr__(self) -> str:
        names = ", ".join(f"{mb.name}[axis {mb.axis}]" for mb in self.members)
        return f"GroupLayout({self.name!r}, m={self.m}, members=[{names}])"

    @property
    def params(self) -> list[nn.Parameter]:
        """The parameters this layout touches."""
        return [mb.param for mb in self.members]

    @torch.no_grad()
    def sq_norms(self) -> torch.Tensor:
        """(m,) squared Euclidean norm of every group over all its slices (float64)."""
        dev = self.members[0].param.device
        out = torch.zeros(self.m + 1, dtype=torch.float64, device=dev)
        for mb in self.members:
            x = mb.param.detach().reshape(mb.shape2)
            dims = [d for d in range(x.dim()) if d != mb.axis]
            per_pos = x.double().square()
            mb.add_to(out, per_pos.sum(dim=dims) if dims else per_pos)
        return out[: self.m]

    def norms(self) -> torch.Tensor:
        """(m,) Euclidean norm of every group (float64)."""
        return self.sq_norms().sqrt_()

    @torch.no_grad()
    def scale_(self, c: torch.Tensor) -> None:
        """Multiply group j by c[j] in place, in every member (positions in no group are left alone)."""
        c = torch.as_tensor(c).reshape(-1)
        if c.numel() != self.m:
            raise SparsenetsError(f"scale_ needs one multiplier per group ({self.m}); got {c.numel()}")
        ext: dict[tuple, torch.Tensor] = {}  # c with a trailing 1, once per (device, dtype) among the members
        for mb in self.members:
            p = mb.param
            key = (p.device, p.dtype)
            if key not in ext:
                cc = c.to(device=p.device, dtype=p.dtype)
                ext[key] = torch.cat([cc, cc.new_ones(1)])
            p.data.view(mb.shape2).mul_(mb.spread(ext[key]))

    def sizes(self) -> torch.Tensor:
        """(m,) number of scalars in every group (for "size" weights)."""
        out = torch.zeros(self.m + 1, dtype=torch.float64)
        for mb in self.members:
            per_pos = mb.param.numel() // mb.shape2[mb.axis]
            mb.add_to(out, torch.full((mb.shape2[mb.axis],), float(per_pos), dtype=torch.float64))
        return out[: self.m]

    def masks(self, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """{parameter name: bool tensor} that is False on the slices of groups with keep[j] False."""
        keep = torch.as_tensor(keep, dtype=torch.bool).reshape(-1)
        out = {}
        for mb in self.members:
            k = keep.to(mb.param.device)
            f = mb.spread(torch.cat([k, k.new_ones(1)]))
            out[mb.name] = f.expand(mb.shape2).reshape(mb.param.shape).clone()
        return out

    @torch.no_grad()
    def reduce(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(m,) float64 sum over each group's slices of per-element `values` (name → tensor shaped like that
        member's parameter, e.g. importance scores); members missing from `values` contribute nothing."""
        acc = torch.zeros(self.m + 1, dtype=torch.float64)  # slot m: positions in no group
        for mb in self.members:
            if mb.name not in values:
                continue
            x = values[mb.name].detach().cpu().double().reshape(mb.shape2)
            dims = [d for d in range(x.dim()) if d != mb.axis]
            mb.add_to(acc, x.sum(dim=dims) if dims else x)
        return acc[: self.m]

    @staticmethod
    def of_tensor(name: str, tensor: torch.Tensor, kind: str = "filter") -> GroupLayout:
        """A layout over one named tensor, no module needed: "filter" = one group per slice along dim 0 (a
        Linear's output neuron, a conv filter, an embedding row), "element" = one group per entry.

        Args:
            name: the tensor's name (a parameter name such as "fc1.weight").
            tensor: the tensor (a parameter, or any tensor of its shape such as a score).
            kind: "filter" or "element".
        """
        if kind == "element":
            return GroupLayout(
                [Member(name, tensor, (tensor.numel(),), 0, torch.arange(tensor.numel()))],
                tensor.numel(),
                name,
            )
        if kind != "filter":
            raise SparsenetsError(f"of_tensor takes kind 'filter' or 'element'; got {kind!r}")
        if tensor.dim() == 0:
            raise SparsenetsError(f"tensor {name!r} is a scalar: it has no rows to group")
        n = tensor.shape[0]
        return GroupLayout(_fix_shapes([Member(name, tensor, (n, -1), 0, torch.arange(n))]), n, name)

    @staticmethod
    def of_layer(model: nn.Module, layer: str, kind: str = "filter") -> GroupLayout:
        """A layout over one layer's weight (and bias for "filter"): element, filter (= row), channel (= column),
        shape (conv: W[:, c, i, j]; linear: a column) or layer (one group).

        Args:
            model: the model.
            layer: the module's name in `model.named_modules()`.
            kind: one of `KINDS`.
        """
        modules = dict(model.named_modules())
        if layer not in modules or getattr(modules[layer], "weight", None) is None:
            raise SparsenetsError(f"no layer {layer!r} with a weight in the model; names: {_weighted(model)}")
        if kind not in KINDS:
            raise SparsenetsError(f"kind must be one of {KINDS}; got {kind!r}")
        mod = modules[layer]
        w = mod.weight
        n_out = w.shape[0]
        name = f"{layer}.weight" if layer else "weight"
        if kind == "element":
            return GroupLayout([Member(name, w, (w.numel(),), 0, torch.arange(w.numel()))], w.numel(), layer)
        if kind == "layer":
            return GroupLayout(
                [Member(name, w, (1, w.numel()), 0, torch.zeros(1, dtype=torch.long))], 1, layer
            )
        if kind == "filter":
            members = [Member(name, w, (n_out, -1), 0, torch.arange(n_out))]
            if getattr(mod, "bias", None) is not None:
                members.append(
                    Member(name[: -len("weight")] + "bias", mod.bias, (n_out,), 0, torch.arange(n_out))
                )
            return GroupLayout(_fix_shapes(members), n_out, layer)
        if w.dim() < 2:
            raise SparsenetsError(
                f"layer {layer!r} has a 1-D weight: only 'element', 'filter' or 'layer' apply"
            )
        n_in = w.shape[1]
        if kind == "channel":
            return GroupLayout(
                _fix_shapes([Member(name, w, (n_out, n_in, -1), 1, torch.arange(n_in))]), n_in, layer
            )
        per = w[0].numel()
        return GroupLayout(_fix_shapes([Member(name, w, (n_out, per), 1, torch.arange(per))]), per, layer)


def _weighted(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if getattr(m, "weight", None) is not None]


def _fix_shapes(members: list[Member]) -> list[Member]:
    """Resolve -1 in shape2 against the parameter's size."""
    for mb in members:
        known = 1
        for s in mb.shape2:
            known *= s if s != -1 else 1
        mb.shape2 = tuple(s if s != -1 else mb.param.numel() // known for s in mb.shape2)
    return members


def _members_of(
    dg: tp.DependencyGraph, module: nn.Module, handler: object, idxs: list[int], roots: list[int]
):
    """The parameter slices that one Torch-Pruning dependency touches (empty for parameter-free ops)."""
    name = dg._module2name.get(module, None)
    if not isinstance(module, nn.Module) or name is None:
        return []
    prefix = f"{name}." if name else ""
    idx = torch.tensor(idxs, dtype=torch.long)
    root = torch.tensor(roots, dtype=torch.long)
    out_fn = dg.is_out_channel_pruning_fn(handler)
    members: list[Member] = []

    def add(pname: str, p: torch.Tensor, shape2: tuple[int, ...], axis: int) -> None:
        ids = torch.full((shape2[axis] if shape2[axis] != -1 else p.shape[axis],), -1, dtype=torch.long)
        ids[idx] = root
        members.extend(_fix_shapes([Member(prefix + pname, p, shape2, axis, ids)]))

    if isinstance(module, (*_CONVS, nn.Linear)):
        w = module.weight
        if out_fn or (isinstance(module, _CONVS) and module.groups == module.out_channels > 1):
            add("weight", w, (w.shape[0], -1), 0)
            if module.bias is not None:
                add("bias", module.bias, (w.shape[0],), 0)
        else:
            if isinstance(module, _CONVS) and module.groups != 1:
                raise SparsenetsError(f"grouped convolution {name!r} is not supported in coupled layouts")
            add("weight", w, (w.shape[0], w.shape[1], -1), 1)
    elif isinstance(module, _NORMS):
        for pname in ("weight", "bias"):
            p = getattr(module, pname, None)
            if p is not None:
                add(pname, p, (p.shape[0], -1) if p.dim() > 1 else (p.shape[0],), 0)
    elif any(True for _ in module.parameters(recurse=False)):
        raise SparsenetsError(
            f"layer {name!r} ({type(module).__name__}) is coupled to a pruned channel but has no known group "
            "slicing; list it in ignored_layers or use single-layer layouts"
        )
    return members


def coupled_layouts(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ignored_layers: Sequence[nn.Module] | None = None,
    root_types: tuple[type, ...] = (nn.Conv2d, nn.Linear),
) -> list[GroupLayout]:
    """One layout per prunable root layer: group j = output channel j of the root with every slice coupled to it
    (its bias, the following BatchNorm's γ/β, the next layers' input channel j, residual partners).

    Args:
        model: the model (its parameters are referenced, not copied).
        example_inputs: a batch the model accepts, for tracing.
        ignored_layers: layers never used as roots (default: the last Linear/Conv, i.e. the classifier).
        root_types: module types whose output channels define groups.

    Returns:
        Layouts in the model's module order; `layout.name` is the root layer's name.
    """
    if ignored_layers is None:
        roots = [m for m in model.modules() if isinstance(m, root_types)]
        ignored_layers = roots[-1:]
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
    layouts = []
    for group in dg.get_all_groups(ignored_layers=list(ignored_layers), root_module_types=root_types):
        root_mod = group[0].dep.target.module
        m = len(group[0].idxs)
        members: list[Member] = []
        for item in group:
            try:
                members += _members_of(
                    dg, item.dep.target.module, item.dep.handler, list(item.idxs), list(item.root_idxs)
                )
            except (IndexError, RuntimeError) as err:  # a coupling Torch-Pruning traced but we cannot slice
                where = dg._module2name.get(item.dep.target.module, type(item.dep.target.module).__name__)
                raise SparsenetsError(
                    f"cannot group the channels of {where!r} coupled to {dg._module2name.get(root_mod)!r} "
                    f"({type(err).__name__}: {err}); list one of them in ignored_layers"
                ) from None
        members = _merge(members)
        layouts.append(GroupLayout(members, m, dg._module2name[root_mod]))
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(layouts, key=lambda lay: order.get(lay.name, 0))


def _merge(members: list[Member]) -> list[Member]:
    """Torch-Pruning may list one parameter slice twice (e.g. in and out of a residual add): keep it once."""
    seen: dict[tuple[str, int], Member] = {}
    for mb in members:
        key = (mb.name, mb.axis)
        if key in seen:
            prev = seen[key]
            prev.ids = torch.where(prev.ids >= 0, prev.ids, mb.ids)
        else:
            seen[key] = mb
    return list(seen.values())
