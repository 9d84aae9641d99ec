"""`compact`: remove every all-zero coupled channel group with Torch-Pruning, and prove the function unchanged.

After each layer's groups are removed, the smaller model's outputs on the example input are compared with the
masked model's; a group layout that does not fit the model (a channel split by chunk/cat, a product with another
tensor such as `b(a(x) * x)`) changes or breaks them, and `compact` refuses with one line naming that layer.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from sparsenets.compact.measure import FORMATS, fastest_memory_format
from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout, coupled_layouts
from sparsenets.masks import apply_masks_, detach_masks, get_masks

# what Torch-Pruning or the layouts raise on a model whose channel couplings they cannot follow
_LAYOUT_ERRORS = (SparsenetsError, IndexError, KeyError, ValueError, RuntimeError, AssertionError, TypeError)


def compact(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ignored_layers: Sequence[str] = (),
    tol: float = 0.0,
    memory_format: str = "keep",
    check_tol: float | None = 1e-3,
) -> nn.Module:
    """A smaller copy of `model` without its all-zero coupled channel groups (the original is untouched).

    Args:
        model: a model whose removable groups are exactly zero (e.g. after `ProxOptimizer.finalize()`).
        example_inputs: a batch the model accepts (for tracing and for the output check).
        ignored_layers: names of layers never shrunk (default: the classifier, the last Linear/Conv).
        tol: a group counts as zero when its norm is <= tol.
        memory_format: layout of the returned model's 4-D weights: "keep" (as `model`), "contiguous" (NCHW),
            "channels_last", or "auto" (whichever `fastest_memory_format` times faster). Inputs need no change:
            a channels-last convolution accepts NCHW inputs.
        check_tol: the largest allowed max |compacted − masked| output on `example_inputs` (eval mode), relative to
            max(1, max |masked|); None skips the check (e.g. with a `tol` that removes nonzero groups).

    Returns:
        An ordinary module of the same class with fewer channels; one channel is kept in a fully zero layer.
        Masks attached with `sparsenets.masks` are dropped from the copy (their zeros are in the weights).

    Raises:
        SparsenetsError: a bad `memory_format`, a model whose coupled groups cannot be found, or a compacted model
            whose outputs differ from the masked model's (naming the layer whose group layout does not fit).
    """
    if memory_format not in ("keep", "auto", *FORMATS):
        raise SparsenetsError(
            f"memory_format must be 'keep', 'auto', 'contiguous' or 'channels_last'; got {memory_format!r}"
        )
    small = copy.deepcopy(model).eval()
    if get_masks(small):  # the copy's layers change shape: masks of the old shapes must not follow it
        apply_masks_(small)
        detach_masks(small)
    modules = dict(small.named_modules())
    unknown = [n for n in ignored_layers if n not in modules]
    if unknown:
        raise SparsenetsError(f"ignored_layers names {unknown[0]!r}, which is not a layer of the model")
    ignored = [modules[n] for n in ignored_layers] if ignored_layers else None
    reference = _outputs(small, example_inputs, "the masked model") if check_tol is not None else None
    plan = []  # decide everything first: pruning replaces the parameters the layouts point at
    for layout in _layouts(small, example_inputs, ignored):
        try:
            zero = torch.nonzero(layout.norms() <= tol).flatten().tolist()
        except _LAYOUT_ERRORS as err:
            raise SparsenetsError(
                f"the coupled groups of layer {layout.name!r} do not fit it: {_line(err)}"
            ) from None
        if len(zero) == layout.m:
            zero = zero[1:]  # a layer needs one channel; it carries zeros, so the function is unchanged
        if zero:
            plan.append((layout.name, zero))
    dg = tp.DependencyGraph().build_dependency(small, example_inputs=example_inputs, verbose=False)
    for name, zero in plan:
        root = modules[name]
        try:
            dg.get_pruning_group(root, dg.get_pruner_of_module(root).prune_out_channels, idxs=zero).prune()
        except _LAYOUT_ERRORS as err:
            raise SparsenetsError(
                f"cannot remove the zero channels of layer {name!r}: {_line(err)}"
            ) from None
        if reference is not None:
            _check(small, example_inputs, reference, check_tol, name, len(zero))
    if memory_format == "auto":
        memory_format = fastest_memory_format(small, example_inputs)
    if memory_format != "keep":
        small.to(memory_format=FORMATS[memory_format])
    return small


def _line(err: BaseException) -> str:
    """The first line of an exception's message, with its type."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _layouts(
    model: nn.Module, example_inputs: torch.Tensor, ignored: list[nn.Module] | None
) -> list[GroupLayout]:
    """`coupled_layouts`, with a failure turned into one line that names the root layer whose groups it could
    not follow (found by asking for each root layer's groups alone)."""
    try:
        return coupled_layouts(model, example_inputs, ignored_layers=ignored)
    except _LAYOUT_ERRORS as err:
        first = err
    roots = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    skipped = roots[-1:] if ignored is None else ignored
    names = {id(m): n for n, m in model.named_modules()}
    try:  # with no root at all it must work, else the trace itself failed and no layer is to blame
        coupled_layouts(model, example_inputs, ignored_layers=roots)
    except _LAYOUT_ERRORS:
        roots = []
    for root in roots:
        if any(root is s for s in skipped):
            continue
        others = [m for m in roots if m is not root]
        try:
            coupled_layouts(model, example_inputs, ignored_layers=others)
        except _LAYOUT_ERRORS:
            name = names[id(root)]
            raise SparsenetsError(
                f"cannot find the coupled channel groups of layer {name!r} ({_line(first)}): its output channels "
                "are split, concatenated or multiplied with another tensor in a way the group layout cannot "
                f"follow; keep it whole with ignored_layers=[{name!r}, ...] (list the classifier too)"
            ) from None
    raise SparsenetsError(f"cannot find the coupled channel groups of this model: {_line(first)}") from None


def _flat(out: Any) -> list[torch.Tensor]:
    """The tensors of a model output: a tensor, or tuples, lists and dicts of them."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flat(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _flat(v)]
    return []


@torch.no_grad()
def _outputs(model: nn.Module, x: torch.Tensor, what: str) -> list[torch.Tensor]:
    """Detached output tensors of `model(x)`; a failing forward is one clear error naming `what`."""
    try:
        return [t.detach().clone() for t in _flat(model(x))]
    except _LAYOUT_ERRORS as err:
        raise SparsenetsError(f"{what} fails on the example input ({_line(err)})") from None


def _check(
    small: nn.Module,
    x: torch.Tensor,
    reference: list[torch.Tensor],
    check_tol: float,
    name: str,
    removed: int,
) -> None:
    """Refuse when removing `removed` channels of layer `name` changed (or broke) the outputs on `x`."""
    where = f"after removing {removed} zero channel(s) of layer {name!r}"
    hint = (
        "its coupled group layout does not fit this model (a channel split by chunk/cat, or multiplied with "
        f"another tensor); keep it whole with ignored_layers=[{name!r}, ...] (list the classifier too)"
    )
    try:
        with torch.no_grad():
            got = _flat(small(x))
    except _LAYOUT_ERRORS as err:
        raise SparsenetsError(
            f"the compacted model fails on the example input {where} ({_line(err)}); {hint}"
        ) from None
    worst = 0.0 if len(got) == len(reference) else float("inf")
    for g, r in zip(got, reference, strict=False):
        if g.shape != r.shape:
            worst = float("inf")
        elif g.is_floating_point() or g.is_complex():
            scale = max(1.0, float(r.abs().max())) if r.numel() else 1.0
            worst = max(worst, float((g - r).abs().max()) / scale if g.numel() else 0.0)
        elif not torch.equal(g, r):
            worst = float("inf")
    if not worst <= check_tol:  # `not <=` also refuses NaN
        raise SparsenetsError(
            f"the compacted model's outputs differ from the masked model's by {worst:.3g} (relative; allowed "
            f"{check_tol:g}) {where}; {hint}"
        )
