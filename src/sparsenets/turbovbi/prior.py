"""Module A of Turbo-VBI as pure tensor functions: the Gaussian–Gamma prior switched by a support s.

Per weight n: q(w_n) = N(μ_n, σ_n²), q(ρ_n) = Gamma(ã_n, b̃_n) (shape, rate), q(s_n = 1) = π̃_n; the support
prior π_n comes from Module B (`bp.py`). All functions take and return tensors of any (broadcastable) shape,
float32 or float64; log-odds are natural logs of P(s = 1) / P(s = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from sparsenets.errors import ConfigError, SparsenetsError

CONSTANTS = ("real", "demo")


class NonFinitePosteriorError(SparsenetsError, ArithmeticError):
    """The variational posterior holds NaN or inf (a diverged w-step or a degenerate prior table)."""


@dataclass(frozen=True)
class GammaTables:
    """Shape/rate of the Gamma prior on the precision ρ: (a, b) for an active weight, (ā, b̄) for an inactive one.

    An inactive weight needs ā/b̄ ≫ a/b (a large prior precision pins it near 0); the spec's regression values are
    a = b = ā = 1, b̄ = 1e-4.
    """

    a: float
    b: float
    a_bar: float
    b_bar: float

    def __post_init__(self) -> None:
        for name in ("a", "b", "a_bar", "b_bar"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"Gamma table {name}={value!r} must be a finite number > 0 (shape and rate of a Gamma prior)"
                )

    def scaled(self, s2: float) -> GammaTables:
        """The same tables with both rates times `s2` (the spec's layer scaling b = s_l²·b, b̄ = s_l²·b̄)."""
        return replace(self, b=self.b * s2, b_bar=self.b_bar * s2)


def check_transition(p01: float, p10: float) -> None:
    """Raise ConfigError unless both support-chain transition probabilities lie strictly inside (0, 1)."""
    for name, p in (("p01", p01), ("p10", p10)):
        if not (isinstance(p, int | float) and 0.0 < p < 1.0):
            raise ConfigError(
                f"{name}={p!r} must lie strictly between 0 and 1 (a transition probability of the support chain)"
            )


def stationary_logodds(p01: float, p10: float) -> float:
    """logit λ of the chain's stationary density λ = p01 / (p01 + p10)."""
    check_transition(p01, p10)
    return math.log(p01) - math.log(p10)


def _check_constants(constants: str) -> None:
    if constants not in CONSTANTS:
        raise ConfigError(f"constants={constants!r} is unknown: use one of {CONSTANTS}")


def rho_step(
    m2: torch.Tensor, pi_tilde: torch.Tensor, t: GammaTables, constants: str = "real"
) -> tuple[torch.Tensor, torch.Tensor]:
    """q(ρ) = Gamma(ã, b̃) given E[w²] and q(s = 1); shapes: m2, pi_tilde broadcastable → (ã, b̃) of their shape.

    m2 = μ² + σ² per weight. "real": ã = π̃a + (1−π̃)ā + ½, b̃ = π̃b + (1−π̃)b̄ + m2/2 (the exact mean-field
    update of a real Gaussian); "demo": + 1 and + m2 (the complex-Gaussian constants of the demo and Liu et al.).
    """
    _check_constants(constants)
    half = 0.5 if constants == "real" else 1.0
    a_t = pi_tilde * t.a + (1 - pi_tilde) * t.a_bar + half
    b_t = pi_tilde * t.b + (1 - pi_tilde) * t.b_bar + half * m2
    return a_t, b_t


def expected_rho(a_t: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """E[ρ] = ã / b̃ under Gamma(ã, b̃); same shape as the inputs."""
    return a_t / b_t


def expected_log_rho(a_t: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """E[ln ρ] = ψ(ã) − ln b̃ under Gamma(ã, b̃); same shape as the inputs."""
    return torch.digamma(a_t) - torch.log(b_t)


def gamma_log_density_mean(
    shape: float, rate: float, e_rho: torch.Tensor, e_log_rho: torch.Tensor
) -> torch.Tensor:
    """E_q[ln Gamma(ρ; shape, rate)] = shape·ln rate − lnΓ(shape) + (shape−1)E[ln ρ] − rate·E[ρ]."""
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1) * e_log_rho - rate * e_rho


def s_logodds(
    a_t: torch.Tensor, b_t: torch.Tensor, prior_logodds: torch.Tensor, t: GammaTables
) -> torch.Tensor:
    """ln C1 − ln C0 of the s-step, logit π included; shapes broadcast → the posterior log-odds of q(s = 1).

    ln C1 = ln π + E[ln Gamma(ρ; a, b)], ln C0 = ln(1−π) + E[ln Gamma(ρ; ā, b̄)], expectations under q(ρ).
    """
    e_rho, e_log = expected_rho(a_t, b_t), expected_log_rho(a_t, b_t)
    active = gamma_log_density_mean(t.a, t.b, e_rho, e_log)
    inactive = gamma_log_density_mean(t.a_bar, t.b_bar, e_rho, e_log)
    return prior_logodds + active - inactive


def s_step(a_t: torch.Tensor, b_t: torch.Tensor, prior_logodds: torch.Tensor, t: GammaTables) -> torch.Tensor:
    """π̃ = q(s = 1) = sigmoid(`s_logodds`); same shape as the broadcast inputs."""
    return torch.sigmoid(s_logodds(a_t, b_t, prior_logodds, t))


def extrinsic_logodds(post_logodds: torch.Tensor, prior_logodds: torch.Tensor) -> torch.Tensor:
    """A → B message: logit π^e = logit π̃ − logit π (the posterior with B's own prior divided out)."""
    return post_logodds - prior_logodds


def marginal_unary_logodds(post_logodds: torch.Tensor, prior_logodds: torch.Tensor) -> torch.Tensor:
    """The demo's unary: logit of π̃π / (π̃π + (1−π̃)(1−π)) = logit π̃ + logit π (B's prior counted twice)."""
    return post_logodds + prior_logodds


def kl_weights(mu: torch.Tensor, sigma2: torch.Tensor, prior_var: torch.Tensor) -> torch.Tensor:
    """Σ_n KL(N(μ_n, σ_n²) ‖ N(0, σ_p,n²)) = Σ ½ln(σ_p²/σ²) + (σ² + μ²)/(2σ_p²) − ½; shapes broadcast → scalar.

    prior_var is σ_p² = b̃/ã, the w-step's fixed prior variance per weight.
    """
    return (0.5 * torch.log(prior_var / sigma2) + (sigma2 + mu * mu) / (2 * prior_var) - 0.5).sum()


def check_finite(name: str, *tensors: torch.Tensor) -> None:
    """Raise NonFinitePosteriorError (a SparsenetsError) when any tensor holds NaN or inf; one host read."""
    if not tensors:
        return
    ok = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
    if not bool(ok):
        raise NonFinitePosteriorError(
            f"the Turbo-VBI posterior {name} holds NaN/inf: lower the learning rate, check the data, or raise b̄"
        )
