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
from sparsenets.spectral.base import FactoredLinear, check_untied
from sparsenets.spectral.schedule import StepSchedule, reset_optimizer_state
from sparsenets.spectral.targets import from_linear, restore_linears, select_linears, swap_linears


class LoRALinear(FactoredLinear):
    """y = x (W₀ + scale·B A)ᵀ + b with W₀ frozen (a buffer), A (r, in) and B (out, r) trained, B = 0 at start.

    Args:
        in_features, out_features, rank: shapes; 1 <= rank <= min(in, out).
        bias: learn an additive bias.
        weight: W₀ (out, in); None draws nn.Linear's default init.
        bias_init: initial bias (out,); None draws nn.Linear's default.
        scale: multiplier of BA.
    """

    def build(self, weight: torch.Tensor, *, scale: float = 1.0) -> None:
        """W₀ = `weight` (out, in) as a buffer, A (r, in) random and B (out, r) = 0 as parameters."""
        self.scale = scale
        self.register_buffer("W0", weight.clone())
        self.A = nn.Parameter(
            torch.empty(self.rank, self.in_features, dtype=weight.dtype, device=weight.device)
        )
        self.B = nn.Parameter(
            torch.zeros(self.out_features, self.rank, dtype=weight.dtype, device=weight.device)
        )
        self.reset_adapter()

    @torch.no_grad()
    def reset_adapter(self, generator: torch.Generator | None = None) -> None:
        """A ← Kaiming-uniform (as nn.Linear), B ← 0: the adapter adds nothing until B learns."""
        bound = 1.0 / math.sqrt(self.in_features)
        a = torch.rand(self.A.shape, generator=generator, dtype=self.A.dtype) * 2 * bound - bound
        self.A.copy_(a)
        self.B.zero_()

    def compose_weight(self) -> torch.Tensor:
        """The effective dense weight W₀ + scale·BA, shape (out, in) (`.weight`)."""
        return self.W0 + self.scale * (self.B @ self.A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) → (..., out), without materialising BA."""
        return F.linear(x, self.W0, self.bias) + self.scale * F.linear(F.linear(x, self.A), self.B)

    @torch.no_grad()
    def merge_and_reinit_(self, generator: torch.Generator | None = None) -> None:
        """ReLoRA* restart: W₀ ← W₀ + scale·BA, then a fresh adapter (A random, B = 0)."""
        self.W0.add_(self.scale * (self.B @ self.A))
        self.reset_adapter(generator)


@dataclass
class LoRAConfig:
    """Which nn.Linear layers become LoRALinear, at which rank (targets matched as in `SSTConfig`)."""

    rank: int
    targets: tuple[str, ...] = ("q", "k", "v", "o", "fc1", "fc2")
    scale: float = 1.0


def lora_convert(model: nn.Module, config: LoRAConfig) -> nn.Module:
    """Replace the targeted nn.Linear layers by LoRALinear with W₀ = their current weight (in place).

    Raises:
        ConfigError: a target that matches no nn.Linear, a rank outside [1, min(in, out)], or a target whose
            weight is tied to another module's.
    """
    check_untied(model, select_linears(model, config.targets))
    return swap_linears(
        model,
        config.targets,
        config.rank,
        lambda lin: from_linear(LoRALinear, lin, config.rank, scale=config.scale),
    )


def lora_merge(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by a plain nn.Linear with weight W₀ + scale·BA (in place; returns `model`)."""
    return restore_linears(model, LoRALinear)


class ReLoRASchedule(StepSchedule):
    """ReLoRA*: every `period` steps merge BA into W₀, re-draw the adapters and drop all optimizer state.

    Args:
        period: steps between merges (pair with `jagged_lr_lambda(restart_period=period, ...)`).
        seed: seed of the adapter re-draws (identical on every rank).
    """

    def __init__(self, period: int, seed: int = 0) -> None:
        if period < 1:
            raise ConfigError(f"ReLoRA* merge period must be >= 1 step, got {period}")
        self.period, self.seed, self.merges = period, seed, 0

    def on_step(self, step: int, module: nn.Module, optimizer: Any) -> None:
        """Every `period` steps: merge and re-draw every LoRALinear of `module`, drop all optimizer state."""
        if step % self.period:
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        for mod in module.modules():
            if isinstance(mod, LoRALinear):
                mod.merge_and_reinit_(g)
        reset_optimizer_state(optimizer)
        self.merges += 1

    def state_dict(self) -> dict[str, Any]:
        return {"merges": self.merges}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.merges = int(state["merges"])
