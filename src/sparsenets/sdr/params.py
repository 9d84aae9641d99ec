"""CSA parameters and the G-dependent noise schedule (steps 5–6 of the Code Selection Algorithm).

Four variants found in existing implementations (spec table `sigmoid=`); `alt` is the default:

| name           | η(G)                                  | μ(V)                                     |
|----------------|---------------------------------------|------------------------------------------|
| `alt`          | 1 + χ·K·max(0, (G−G⁻)/(1−G⁻))^γ       | 1 + (η−1)·L(slope·(V−inflection))        |
| `core`         | same as `alt`                         | max(η·L(4·(V−c)), 1); η where V ≥ 0.999  |
| `sparseypy`    | χ·max(0, (G−G⁻)/(1−G⁻))               | η·L(slope·V − offset) + 1e−6             |
| `pulinagrawal` | 10⁴·G⁷                                | 1 + η·L(26·V − 13)                       |

L is the logistic function. μ ≥ 1 except in `sparseypy`, whose η cancels in ρ (G only gates the noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsenets.errors import ConfigError

VARIANTS = ("alt", "core", "sparseypy", "pulinagrawal")


@dataclass(frozen=True)
class CSAParams:
    """Hyper-parameters of the Code Selection Algorithm (defaults: the spec's recommended `alt` variant).

    Attributes:
        variant: one of `alt`, `core`, `sparseypy`, `pulinagrawal`.
        chi: χ, the maximum odds multiplier (η(1) = 1 + χ·K in `alt`/`core`).
        gamma: γ, exponent of the rectified familiarity.
        g_minus: G⁻, familiarity at or below which selection is uniform.
        slope: steepness of the logistic μ(V) (`alt`: 32; `sparseypy`: λ).
        inflection: V at the logistic's midpoint (`alt`: 0.424); `sparseypy` uses `offset` instead.
        offset: φ of `sparseypy` (μ = η·L(λV − φ)).
        core_c: inflection c of the `core` variant (0.5; SparseyCore ratchets it to 0.9).
        e_u, e_h, e_d: exponents of the U, H and D evidence in V = U^e_u·H^e_h·D^e_d.
        learn_select: `sample` (draw from ρ) or `argmax` in learning mode.
        recognise_select: `argmax` (random tie-break) or `sample` in recognition mode.
        tie_break: `random` (fresh draw per call, the spec default) or `fixed` (one random priority per
            cell drawn at construction, so equal inputs always get equal argmax codes).
    """

    variant: str = "alt"
    chi: float = 100.0
    gamma: float = 2.0
    g_minus: float = 0.1
    slope: float = 32.0
    inflection: float = 0.424
    offset: float = 5.0
    core_c: float = 0.5
    e_u: float = 1.0
    e_h: float = 1.0
    e_d: float = 1.0
    learn_select: str = "sample"
    recognise_select: str = "argmax"
    tie_break: str = "random"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown CSA variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if not 0.0 <= self.g_minus < 1.0:
            raise ConfigError(f"g_minus must lie in [0, 1), got {self.g_minus}")
        if self.chi < 0 or self.gamma <= 0:
            raise ConfigError(f"chi must be >= 0 and gamma > 0, got chi={self.chi}, gamma={self.gamma}")
        for name in ("learn_select", "recognise_select"):
            if getattr(self, name) not in ("sample", "argmax"):
                raise ConfigError(f"{name} must be 'sample' or 'argmax', got {getattr(self, name)!r}")
        if self.tie_break not in ("random", "fixed"):
            raise ConfigError(f"tie_break must be 'random' or 'fixed', got {self.tie_break!r}")

    @staticmethod
    def preset(name: str, **overrides: float | str) -> CSAParams:
        """The parameter set a named implementation uses (spec table), with `overrides` applied."""
        presets: dict[str, dict[str, float | str]] = {
            "alt": {},
            "core": {"variant": "core"},
            "core-ratcheted": {"variant": "core", "core_c": 0.9},
            "sparseypy": {"variant": "sparseypy", "slope": 28.0, "offset": 5.0, "chi": 2.5, "g_minus": 0.2},
            "sparseypy-darpa": {
                "variant": "sparseypy",
                "slope": 8.0,
                "offset": 5.0,
                "chi": 1.5,
                "g_minus": 0.2,
            },
            "pulinagrawal": {"variant": "pulinagrawal"},
            "alt-eu10": {"e_u": 10.0},
        }
        if name not in presets:
            raise ConfigError(f"unknown CSA preset {name!r}; choose one of {', '.join(presets)}")
        return CSAParams(**{**presets[name], **overrides})  # type: ignore[arg-type]


def rectified_familiarity(g: torch.Tensor, g_minus: float) -> torch.Tensor:
    """max(0, (G − G⁻)/(1 − G⁻)), elementwise; any shape."""
    return ((g - g_minus) / (1.0 - g_minus)).clamp(min=0.0)


def eta(g: torch.Tensor, k: int, p: CSAParams) -> torch.Tensor:
    """Step 5: the odds multiplier η from familiarity G (any shape; K = cells per CM)."""
    if p.variant in ("alt", "core"):
        return 1.0 + p.chi * k * rectified_familiarity(g, p.g_minus) ** p.gamma
    if p.variant == "sparseypy":
        return p.chi * rectified_familiarity(g, p.g_minus)
    return 1e4 * g**7  # pulinagrawal, after the 2010 paper


def mu(v: torch.Tensor, eta_: torch.Tensor, p: CSAParams) -> torch.Tensor:
    """Step 6: unnormalised selection weight μ_i of each cell.

    Args:
        v: cell evidence V, shape (..., Q, K), values in [0, 1].
        eta_: η per mac, shape (...,) (broadcast over Q, K).
    """
    e = eta_[..., None, None]
    if p.variant == "alt":
        return 1.0 + (e - 1.0) * torch.sigmoid(p.slope * (v - p.inflection))
    if p.variant == "core":
        m = torch.clamp(e * torch.sigmoid(4.0 * (v - p.core_c)), min=1.0)
        return torch.where(v >= 0.999, e.expand_as(m), m)
    if p.variant == "sparseypy":
        return e * torch.sigmoid(p.slope * v - p.offset) + 1e-6
    return 1.0 + e * torch.sigmoid(26.0 * v - 13.0)  # pulinagrawal
