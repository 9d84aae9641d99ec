"""`sst_convert`: swap chosen nn.Linear layers of a model for SSTLinear (PEFT-style, by name); `sst_merge` back."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.spectral.base import check_untied
from sparsenets.spectral.layer import SSTLinear
from sparsenets.spectral.sampling import SAMPLING_MODES
from sparsenets.spectral.targets import from_linear, restore_linears, select_linears, swap_linears


@dataclass
class SSTConfig:
    """How to convert a model and how to schedule its SST rounds.

    Attributes:
        rank: r, singular-vector pairs trained per iteration in every converted layer.
        targets: module names (or name suffixes: "q" matches "blocks.0.attn.q") of the nn.Linear layers to convert.
        period: T3, optimizer steps per iteration (one sampled set of pairs).
        warmup: steps of LR re-warm-up at the start of each iteration (see `jagged_lr_lambda`).
        iterations_per_round: T2, iterations between re-SVDs; None: k/r with k the smallest min(in, out).
        sampling: "mixture" (½(1/k + σ/Σσ)), "sigma", "uniform" or "top".
        enhanced_grad: train u_i, v_i on G v_i, Gᵀ u_i (σ_i dropped).
        normalize: renormalise active columns after each step.
        resvd: re-decompose at the end of every round.
    """

    rank: int
    targets: tuple[str, ...] = ("q", "k", "v", "o", "fc1", "fc2")
    period: int = 200
    warmup: int = 20
    iterations_per_round: int | None = None
    sampling: str = "mixture"
    enhanced_grad: bool = True
    normalize: bool = True
    resvd: bool = True

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_MODES:
            raise ConfigError(f"unknown SST sampling {self.sampling!r}; choose one of {SAMPLING_MODES}")
        if self.period < 1:
            raise ConfigError(f"SST period (T3) must be >= 1 step, got {self.period}")
        if self.iterations_per_round is not None and self.iterations_per_round < 1:
            raise ConfigError(f"iterations_per_round (T2) must be >= 1, got {self.iterations_per_round}")


def sst_convert(model: nn.Module, config: SSTConfig) -> nn.Module:
    """Replace every nn.Linear named by `config.targets` with an SSTLinear holding the same function.

    The dense weight already in the layer is W₀: (U, s, V) = SVD(W₀), so outputs are unchanged (to fp32 error).

    Returns:
        `model`, changed in place.

    Raises:
        ConfigError: a target that matches no nn.Linear, a rank outside [1, min(in, out)] for a chosen layer, or
            a chosen layer whose weight is tied to another module (converting would untie it silently).
    """
    check_untied(model, select_linears(model, config.targets))
    return swap_linears(
        model,
        config.targets,
        config.rank,
        lambda lin: from_linear(
            SSTLinear, lin, config.rank, enhanced_grad=config.enhanced_grad, normalize=config.normalize
        ),
    )


def sst_merge(model: nn.Module) -> nn.Module:
    """Replace every SSTLinear by a plain nn.Linear with weight U diag(s) Vᵀ (in place; returns `model`)."""
    return restore_linears(model, SSTLinear)


def sst_layers(model: nn.Module) -> list[SSTLinear]:
    """All SSTLinear modules of `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, SSTLinear)]
