"""Model surgery by dotted name: find a submodule's owner, put a new module in an old one's place.

The one place that turns "features.3.weight" or "blocks.0.attn" into (parent module, local name), shared by
masks (parameters), compaction (resized layers) and layer conversion (SST, LoRA, Bayesian layers).
"""

from __future__ import annotations

from torch import nn

from sparsenets.errors import SparsenetsError


def owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The submodule that holds the attribute `name` (dotted) and that attribute's local name.

    Args:
        model: the root module.
        name: a dotted path, e.g. "features.3.weight" or "encoder.layers.0.linear1".
    """
    prefix, _, leaf = name.rpartition(".")
    try:
        parent = model.get_submodule(prefix) if prefix else model
    except AttributeError:
        raise SparsenetsError(f"the model has no submodule {prefix!r} (from {name!r})") from None
    return parent, leaf


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put `new` where the submodule called `name` is (in place) and return the module it replaced."""
    parent, child = owner(model, name)
    old = parent.get_submodule(child)
    parent._modules[child] = new  # not setattr: a replaced module keeps its place in the module order
    return old
