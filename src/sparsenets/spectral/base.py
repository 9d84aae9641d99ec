"""`FactoredLinear`: what SSTLinear and LoRALinear share — a rank-r layer that stands for one dense nn.Linear.

Both start from a dense weight W₀ (out, in) and bias (out,), expose the dense weight they currently stand for as the
tensor `.weight` (composed from the factors on each access, autograd flows through it) next to `.bias`, so code that
reads `layer.weight` / `layer.bias` of an nn.Linear (`nn.MultiheadAttention`'s `out_proj`,
`nn.TransformerEncoderLayer`) runs on them, and turn back into a plain nn.Linear with `to_linear()` (how
`sst_merge` / `lora_merge` export them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.spectral.targets import check_rank


class FactoredLinear(nn.Module):
    """Base of the converted layers: shapes, the rank check, the dense start, the bias and the export to nn.Linear.

    A subclass implements `build` (register its factors from the starting weight; its keyword options are the
    layer's own) and `compose_weight()`; `.weight` is that dense weight as a read-only tensor attribute. The bias is registered after the factors, so parameters come as factors, bias.

    Args:
        in_features, out_features: as nn.Linear.
        rank: r, 1 <= r <= min(in, out).
        bias: learn an additive bias.
        weight: the dense start W₀ (out, in); None draws nn.Linear's default init (from the global RNG).
        bias_init: the starting bias (out,); None draws nn.Linear's default.
        options: the subclass's own options, passed to `build`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        *,
        weight: torch.Tensor | None = None,
        bias_init: torch.Tensor | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        check_rank(rank, in_features, out_features, type(self).__name__)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        if weight is None or (bias and bias_init is None):
            dense = nn.Linear(in_features, out_features, bias=bias)
            weight = dense.weight.detach() if weight is None else weight
            bias_init = dense.bias.detach() if bias and bias_init is None else bias_init
        self.build(weight.detach(), **options)
        self.bias = nn.Parameter(bias_init.detach().clone().to(weight.dtype)) if bias else None

    def build(self, weight: torch.Tensor, **options: Any) -> None:
        """Register the layer's tensors so that it starts as the dense weight `weight` (out, in)."""
        raise NotImplementedError

    def compose_weight(self) -> torch.Tensor:
        """The dense weight this layer stands for, shape (out, in), differentiable in the layer's factors."""
        raise NotImplementedError

    @property
    def weight(self) -> torch.Tensor:
        """The dense weight (out, in) composed from the factors now: a tensor that autograd flows through, so
        PyTorch modules that read `.weight` of their linear layers (attention's `out_proj`) train the factors."""
        return self.compose_weight()

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """A plain nn.Linear with the current dense weight and bias (zero inference overhead)."""
        w = self.weight
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        lin = lin.to(device=w.device, dtype=w.dtype)
        lin.weight.copy_(w)
        if self.bias is not None:
            lin.bias.copy_(self.bias)
        return lin

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def check_untied(model: nn.Module, names: Iterable[str]) -> None:
    """Raise a ConfigError when the weight of a layer in `names` is also held by another module of `model`.

    A factored layer keeps its own factors, so converting one side of a tie (a head sharing the embedding matrix)
    would untie it without a word.
    """
    chosen = set(names)
    holders: dict[int, list[str]] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        for leaf, p in mod._parameters.items():
            if p is not None:
                holders.setdefault(id(p), []).append(f"{name}.{leaf}" if name else leaf)
    for name in sorted(chosen):
        w = model.get_submodule(name)._parameters.get("weight")
        others = [h for h in holders.get(id(w), []) if h != f"{name}.weight"] if w is not None else []
        if others:
            raise ConfigError(
                f"the weight of layer {name!r} is tied to {others[0]!r}; converting it would untie them. "
                "Leave it out of the targets (or untie it yourself first)"
            )
