"""The low-rank baselines of SST: LoRA for pre-training (frozen random W₀ + BA) and ReLoRA* (periodic merges).

ReLoRA* here is end-to-end ReLoRA without its full-rank warm start: every T steps BA is merged into W₀, A is
re-drawn, B = 0, and the whole optimizer state is dropped (with the LR re-warm-up of `jagged_lr_lambda`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.spectral.schedule import reset_optimizer_state
from sparsenets.spectral.targets import check_rank, from_linear, swap_linears, unswap
from sparsenets.train.callbacks import Callback, TrainState


class LoRALinear(nn.Module):
    """y = x (W₀ + scale·B A)ᵀ + b with W₀ frozen (a buffer), A (r, in) and B (out, r) trained, B = 0 at start.

    Args:
        in_features, out_features, rank: shapes; 1 <= rank <= min(in, out).
        bias: learn an additive bias.
        weight: W₀ (out, in); None draws nn.Linear's default init.
        bias_init: initial bias (out,); None draws nn.Linear's default.
        scale: multiplier of BA.
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
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        check_rank(rank, in_features, out_features, "LoRALinear")
        self.in_features, self.out_features, self.rank, self.scale = in_features, out_features, rank, scale
        if weight is None or (bias and bias_init is None):
            dense = nn.Linear(in_features, out_features, bias=bias)
            weight = dense.weight.detach() if weight is None else weight
            bias_init = dense.bias.detach() if bias and bias_init is None else bias_init
        self.register_buffer("W0", weight.detach().clone())
        self.A = nn.Parameter(torch.empty(rank, in_features, dtype=weight.dtype, device=weight.device))
        self.B = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype, device=weight.device))
        self.bias = nn.Parameter(bias_init.detach().clone()) if bias else None
        self.reset_adapter()

    @torch.no_grad()
    def reset_adapter(self, generator: torch.Generator | None = None) -> None:
        """A ← Kaiming-uniform (as nn.Linear), B ← 0: the adapter adds nothing until B learns."""
        bound = 1.0 / math.sqrt(self.in_features)
        a = torch.rand(self.A.shape, generator=generator, dtype=self.A.dtype) * 2 * bound - bound
        self.A.copy_(a)
        self.B.zero_()

    def weight(self) -> torch.Tensor:
        """The effective dense weight W₀ + scale·BA, shape (out, in)."""
        return self.W0 + self.scale * (self.B @ self.A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) → (..., out), without materialising BA."""
        return F.linear(x, self.W0, self.bias) + self.scale * F.linear(F.linear(x, self.A), self.B)

    @torch.no_grad()
    def merge_and_reinit_(self, generator: torch.Generator | None = None) -> None:
        """ReLoRA* restart: W₀ ← W₀ + scale·BA, then a fresh adapter (A random, B = 0)."""
        self.W0.add_(self.scale * (self.B @ self.A))
        self.reset_adapter(generator)

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """A plain nn.Linear with weight W₀ + scale·BA."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        lin = lin.to(device=self.W0.device, dtype=self.W0.dtype)
        lin.weight.copy_(self.weight())
        if self.bias is not None:
            lin.bias.copy_(self.bias)
        return lin

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


@dataclass
class LoRAConfig:
    """Which nn.Linear layers become LoRALinear, at which rank (targets matched as in `SSTConfig`)."""

    rank: int
    targets: tuple[str, ...] = ("q", "k", "v", "o", "fc1", "fc2")
    scale: float = 1.0


def convert_lora(model: nn.Module, config: LoRAConfig) -> nn.Module:
    """Replace the targeted nn.Linear layers by LoRALinear with W₀ = their current weight (in place).

    Raises:
        ConfigError: a target that matches no nn.Linear, or a rank outside [1, min(in, out)].
    """
    return swap_linears(
        model,
        config.targets,
        config.rank,
        lambda lin: from_linear(LoRALinear, lin, config.rank, scale=config.scale),
    )


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by a plain nn.Linear (in place; returns `model`)."""
    return unswap(model, LoRALinear)


class ReLoRASchedule(Callback):
    """ReLoRA*: every `period` steps merge BA into W₀, re-draw the adapters and drop all optimizer state.

    Args:
        period: steps between merges (pair with `jagged_lr_lambda(restart_period=period, ...)`).
        seed: seed of the adapter re-draws (identical on every rank).
    """

    def __init__(self, period: int, seed: int = 0) -> None:
        if period < 1:
            raise ConfigError(f"ReLoRA* merge period must be >= 1 step, got {period}")
        self.period, self.seed, self.merges = period, seed, 0

    def after_step(self, state: TrainState) -> None:
        if state.step % self.period:
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + state.step)
        for mod in state.module.modules():
            if isinstance(mod, LoRALinear):
                mod.merge_and_reinit_(g)
        reset_optimizer_state(state.trainer.optimizer)
        self.merges += 1

    def state_dict(self) -> dict[str, Any]:
        return {"merges": self.merges}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.merges = int(state["merges"])
