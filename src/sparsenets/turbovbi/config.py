"""Turbo-VBI's hyper-parameters as one typed, validated dataclass (each bad value: one ConfigError line)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sparsenets.errors import ConfigError
from sparsenets.turbovbi.prior import GammaTables, check_transition

SUPPORTS = ("mrf2d", "chain", "iid", "off")
CONSTANTS = ("real", "demo")
MESSAGES = ("extrinsic", "marginal")
PRUNE_RULES = ("spec", "demo", "pi")


def _open_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value < 1.0):
        raise ConfigError(f"TurboVBIConfig.{name} must be a probability in (0, 1); got {value!r}")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"TurboVBIConfig.{name} must be finite and > 0; got {value!r}")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"TurboVBIConfig.{name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass
class TurboVBIConfig:
    """Turbo-VBI settings (spec: specs/turbovbi.md, "Training/usage" and "Ambiguities and decisions").

    Attributes:
        support: Module B's support prior: "mrf2d" (2-D MRF on each layer's support grid), "chain" (1-D chain
            down each grid column = one output neuron), "iid" (spike-and-slab, π = λ = p01/(p01+p10)), "off"
            (ARD: no support variable, a = ā, b = b̄ = the active table).
        p01, p10: chain transitions P(1|0), P(0|1) of the support prior, rows and columns alike.
        layer_p: per-layer overrides {layer name: (p01, p10)}.
        a, b, a_bar, b_bar: Gamma shape/rate of the active and inactive precision priors, before the layer
            scaling (b, b̄ times s_l² = mean μ² of the layer at conversion when `scale_to_layer`).
        scale_to_layer: scale b, b̄ by each layer's s_l² (the spec's fix for a = b = 1 being std 1 ≫ weights).
        sweeps, damping: loopy-BP flooding sweeps and damping in [0, 1) (Module B on "mrf2d").
        rounds: turbo rounds (w-step epochs, then ρ/s/BP updates).
        epochs_per_round: w-step epochs per round.
        kl_anneal: fraction of the rounds over which the KL weight β rises linearly to 1.
        constants: Gaussian constants of the ρ-step, "real" (+½, E[w²]/2) or "demo" (+1, E[w²]).
        messages: "extrinsic" (both ways, the spec's) or "marginal" (the demo's: full posteriors as unaries,
            full BP marginals back).
        prune: "spec" (π̃ < 0.5 and |μ| < τ_l), "demo" (|μ| < 0.01), "pi" (π̃ < 0.5).
        prune_tau: τ_l = prune_tau · s_l (s_l the layer's rms weight at conversion).
        init_pi_tilde: q(s = 1) at the start (0.1: weights must earn activity).
        init_rho_factor: start E[ρ] at this multiple of ρ*, the s-step's activity threshold (spec: 10).
        init_log_sigma2: log σ² of every weight at conversion, relative to s_l² (σ² = e^this · s_l²).
    """

    support: str = "mrf2d"
    p01: float = 0.1
    p10: float = 0.1
    layer_p: dict[str, tuple[float, float]] = field(default_factory=dict)
    a: float = 1.0
    b: float = 1.0
    a_bar: float = 1.0
    b_bar: float = 0.01
    scale_to_layer: bool = True
    sweeps: int = 10
    damping: float = 0.5
    rounds: int = 15
    epochs_per_round: int = 2
    kl_anneal: float = 1.0 / 3.0
    constants: str = "real"
    messages: str = "extrinsic"
    prune: str = "spec"
    prune_tau: float = 0.1
    init_pi_tilde: float = 0.1
    init_rho_factor: float = 10.0
    init_log_sigma2: float = -8.0

    def __post_init__(self) -> None:
        _choice("support", self.support, SUPPORTS)
        _choice("constants", self.constants, CONSTANTS)
        _choice("messages", self.messages, MESSAGES)
        _choice("prune", self.prune, PRUNE_RULES)
        if self.messages == "marginal" and self.support not in ("mrf2d", "chain"):
            raise ConfigError(
                f"TurboVBIConfig.messages='marginal' needs support 'mrf2d' or 'chain', not {self.support!r}"
            )
        check_transition(self.p01, self.p10)
        for layer, pair in self.layer_p.items():
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ConfigError(f"TurboVBIConfig.layer_p[{layer!r}] must be (p01, p10); got {pair!r}")
            check_transition(*pair)
        self.tables()  # validates a, b, ā, b̄ (finite, > 0)
        for name in ("prune_tau", "init_rho_factor"):
            _positive(name, getattr(self, name))
        _open_unit("init_pi_tilde", self.init_pi_tilde)
        if not (isinstance(self.damping, (int, float)) and 0.0 <= self.damping < 1.0):
            raise ConfigError(f"TurboVBIConfig.damping must be in [0, 1); got {self.damping!r}")
        for name in ("sweeps", "rounds", "epochs_per_round"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"TurboVBIConfig.{name} must be an integer >= 1; got {value!r}")
        if not (isinstance(self.kl_anneal, (int, float)) and 0.0 <= self.kl_anneal <= 1.0):
            raise ConfigError(
                f"TurboVBIConfig.kl_anneal must be a fraction in [0, 1]; got {self.kl_anneal!r}"
            )
        if not math.isfinite(self.init_log_sigma2):
            raise ConfigError(f"TurboVBIConfig.init_log_sigma2 must be finite; got {self.init_log_sigma2!r}")

    def tables(self) -> GammaTables:
        """The unscaled Gamma tables (a, b, ā, b̄); "off" (ARD) uses the active table for both."""
        if self.support == "off":
            return GammaTables(self.a, self.b, self.a, self.b)
        return GammaTables(self.a, self.b, self.a_bar, self.b_bar)

    def transitions(self, layer: str) -> tuple[float, float]:
        """(p01, p10) of `layer` (its override, else the global pair)."""
        p01, p10 = self.layer_p.get(layer, (self.p01, self.p10))
        return float(p01), float(p10)

    def beta(self, round_index: int) -> float:
        """KL weight of round `round_index` (0-based): linear (r+1)/n over the first n = ⌈kl_anneal·rounds⌉
        rounds, then 1 (kl_anneal = 0: always 1)."""
        n = math.ceil(self.kl_anneal * self.rounds)
        return 1.0 if n <= 0 else min(1.0, (round_index + 1) / n)
