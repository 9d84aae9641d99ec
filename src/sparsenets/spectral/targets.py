"""PEFT-style layer selection shared by the SST and low-rank converters: match nn.Linear names, swap modules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.surgery import replace_module


def name_matches(name: str, target: str) -> bool:
    """True when module `name` is `target` or ends with ".target" (so "q" matches "blocks.0.attn.q")."""
    return name == target or name.endswith("." + target)


def select_linears(
    model: nn.Module, targets: Sequence[str], layer_type: type = nn.Linear
) -> dict[str, nn.Module]:
    """The `layer_type` modules of `model` whose names match any target, by qualified name.

    Raises:
        ConfigError: no targets given, or a target that matches no layer of that type.
    """
    if not targets:
        raise ConfigError("no target layer names given; pass e.g. targets=('q', 'k', 'v', 'o', 'fc1', 'fc2')")
    found = {n: m for n, m in model.named_modules() if isinstance(m, layer_type)}
    chosen: dict[str, nn.Module] = {}
    for t in targets:
        hits = {n: m for n, m in found.items() if name_matches(n, t)}
        if not hits:
            names = ", ".join(sorted(found)[:8]) or "none"
            raise ConfigError(
                f"target {t!r} matches no {layer_type.__name__} in the model; its {layer_type.__name__} "
                f"layers are: {names}{' ...' if len(found) > 8 else ''}"
            )
        chosen.update(hits)
    return chosen


def check_rank(rank: int, in_features: int, out_features: int, name: str) -> None:
    """Raise a ConfigError unless 1 <= rank <= min(in, out)."""
    k = min(in_features, out_features)
    if not isinstance(rank, int) or not 1 <= rank <= k:
        raise ConfigError(
            f"rank {rank!r} is invalid for layer {name!r} ({in_features} -> {out_features}); "
            f"use an integer in [1, {k}]"
        )


def from_linear(layer_type: Callable[..., nn.Module], lin: nn.Linear, rank: int, **options: Any) -> nn.Module:
    """A rank-`rank` `layer_type` (SSTLinear, LoRALinear, ...) that starts from `lin`'s weight (out, in) and bias
    (out,), with the layer's own `options`."""
    return layer_type(
        lin.in_features,
        lin.out_features,
        rank,
        bias=lin.bias is not None,
        weight=lin.weight.detach(),
        bias_init=lin.bias.detach() if lin.bias is not None else None,
        **options,
    )


def swap_linears(
    model: nn.Module, targets: Sequence[str], rank: int, build: Callable[[nn.Linear], nn.Module]
) -> nn.Module:
    """Replace every targeted nn.Linear by `build(linear)`, after checking the rank against every chosen layer.

    All checks run before the first swap, so a bad target or rank leaves `model` unchanged.

    Returns:
        `model`, changed in place.
    """
    chosen = select_linears(model, targets)
    for name, lin in chosen.items():
        check_rank(rank, lin.in_features, lin.out_features, name)
    for name, lin in chosen.items():
        replace_module(model, name, build(lin))
    return model


def restore_linears(model: nn.Module, layer_type: type) -> nn.Module:
    """Replace every `layer_type` module (which has `to_linear()`) by the plain nn.Linear it stands for.

    Returns:
        `model`, changed in place.
    """
    for name, mod in list(model.named_modules()):
        if isinstance(mod, layer_type):
            replace_module(model, name, mod.to_linear())
    return model
