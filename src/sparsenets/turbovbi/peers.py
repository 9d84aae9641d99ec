"""The Bayesian pruning peers in Turbo-VBI's framework (same layers, same loop, same masks and compaction).

**Sparse VD** (Molchanov et al. 2017), as published: q(w) = N(θ, σ²) with σ learned directly (α = σ²/θ²),
local reparameterisation, the log-uniform prior's KL by the paper's fit
−KL ≈ k1·sigmoid(k2 + k3·log α) − ½·log(1 + 1/α) − k1 (k1, k2, k3 = 0.63576, 1.87320, 1.48695), loss
mean CE + β·Σ KL / N, prune weights with log α > 3 (log α clamped to [−10, 10] as in the authors' code).

**BC-GHS** (Louizos et al. 2017, group horseshoe), our variant — what is implemented and where it differs:
- w_ij = z_i·w̃_ij with one multiplicative scale z_i per *output* neuron/filter of every layer but the classifier
  (Louizos: per input neuron of FC layers; the brief asks for output groups, the units `compact` removes);
  q(z_i) = N(μ_z, σ_z²), q(w̃_ij) = N(θ, σ²), local reparameterisation on the product's moments
  E[w] = μ_z θ, Var[w] = (μ_z² + σ_z²)σ² + σ_z² θ² (as Louizos).
- Prior: z_i ~ N(0, τ²λ_i²), λ_i ~ C⁺(0, 1), τ ~ C⁺(0, τ0) per layer, w̃ ~ N(0, 1). Louizos learn log-normal
  posteriors of the scales by SGD; we use the inverse-Gamma auxiliary form of the half-Cauchy (Makalic & Schmidt
  2016), whose mean-field updates are closed-form: q(λ²) = IG(1, E[1/ν] + E[z²]E[1/τ²]/2), q(ν) = IG(1, 1 +
  E[1/λ²]), q(τ²) = IG((G+1)/2, E[1/ξ] + Σ E[z²]E[1/λ²]/2), q(ξ) = IG(1, 1/τ0² + E[1/τ²]), run after every
  epoch; between them the w-step sees z's Gaussian prior of variance 1/(E[1/λ²]E[1/τ²]), the exact mean-field
  quadratic term. No bit-precision step (Louizos's second stage).
- Prune groups with log α_z = log σ_z² − log μ_z² > `threshold` (Louizos keep log α < t, t ≈ −3 on
  LeNet-300-100); the classifier stays a plain deterministic layer (its outputs are the classes).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.masks import Masks
from sparsenets.pruning.baselines import classifier
from sparsenets.turbovbi.callback import check_sizes
from sparsenets.turbovbi.layers import (
    BayesConv2d,
    BayesianMixin,
    BayesLinear,
    accumulate_grad_,
    log_sigma2_kl_grad,
)
from sparsenets.turbovbi.model import bayesian_layers, layer_scale2, swap_layers, target_layers
from sparsenets.turbovbi.prior import check_finite, kl_weights

K1, K2, K3 = 0.63576, 1.87320, 1.48695  # Molchanov et al. 2017, eq. 14
LOG_ALPHA_CLAMP = 10.0
EPS = 1e-8


# ------------------------------------------------------------------------------------------------- Sparse VD
def sparse_vd_convert(model: nn.Module, init_log_sigma2: float = -10.0) -> nn.Module:
    """Every nn.Linear / nn.Conv2d becomes a Bayesian layer (θ = its weight), in place; returns `model`."""

    def make(name: str, layer: nn.Module) -> nn.Module:
        cls = BayesLinear if type(layer) is nn.Linear else BayesConv2d
        return cls.from_plain(layer, init_log_sigma2)

    swap_layers(model, target_layers(model), make)
    return model


def log_alpha(layer: BayesianMixin) -> torch.Tensor:
    """log α = log σ² − log θ² per weight (weight-shaped), clamped to ±10."""
    la = layer.log_sigma2 - torch.log(layer.weight * layer.weight + EPS)
    return la.clamp(-LOG_ALPHA_CLAMP, LOG_ALPHA_CLAMP)


def sparse_vd_kl(log_alpha_: torch.Tensor) -> torch.Tensor:
    """Σ KL(q ‖ log-uniform) by Molchanov's fit, from log α of any shape → scalar."""
    neg_kl = K1 * torch.sigmoid(K2 + K3 * log_alpha_) - 0.5 * torch.nn.functional.softplus(-log_alpha_) - K1
    return -neg_kl.sum()


def sparse_vd_masks(model: nn.Module, threshold: float = 3.0) -> Masks:
    """{"<layer>.weight": keep} with keep = log α ≤ threshold, for every Bayesian layer."""
    with torch.no_grad():
        return {f"{n}.weight": log_alpha(layer) <= threshold for n, layer in bayesian_layers(model)}


class SparseVD:
    """The Sparse VD KL driver for any loop (`kl_loss()`, `step()`) or `VariationalCallback`.

    β rises linearly from 0 to 1 over `anneal_steps` optimizer steps (0: β = 1 throughout).
    """

    def __init__(self, model: nn.Module, n_train: int, anneal_steps: int = 0) -> None:
        check_sizes(n_train, max(anneal_steps, 1))
        self.layers = bayesian_layers(model)
        if not self.layers:
            raise ConfigError("SparseVD needs a converted model: call sparse_vd_convert(model) first")
        self.n_train, self.anneal_steps, self.steps = n_train, anneal_steps, 0

    @property
    def beta(self) -> float:
        """The KL weight now."""
        return 1.0 if self.anneal_steps == 0 else min(1.0, (self.steps + 1) / self.anneal_steps)

    def kl_loss(self) -> torch.Tensor:
        """β·Σ KL / N (scalar): add it to the batch's mean cross-entropy."""
        kl = torch.stack([sparse_vd_kl(log_alpha(layer)) for _, layer in self.layers]).sum()
        return kl * (self.beta / self.n_train)

    def step(self) -> bool:
        """Count one optimizer step (advances β); never ends a round."""
        self.steps += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])


# ------------------------------------------------------------------------------------------------- BC-GHS
class _GroupScaled(BayesianMixin):
    """Adds q(z) = N(μ_z, σ_z²) per output unit (multiplying its incoming weights) and its prior variance."""

    def _init_groups(self, log_sigma2_z: float) -> None:
        n = self.weight.shape[0]
        like = self.weight.new_ones(n)
        self.z_mu = nn.Parameter(like.clone())
        self.z_log_sigma2 = nn.Parameter(like * log_sigma2_z)
        self.register_buffer("z_prior_var", like.clone())

    def _bshape(self) -> list[int]:
        return [-1] + [1] * (self.weight.dim() - 1)

    def z_sigma2(self) -> torch.Tensor:
        """σ_z² per unit [out]."""
        return torch.exp(self.z_log_sigma2)

    def mean_weight(self) -> torch.Tensor:
        return self.z_mu.reshape(self._bshape()) * self.weight

    def var_weight(self) -> torch.Tensor:
        zm, zv = self.z_mu.reshape(self._bshape()), self.z_sigma2().reshape(self._bshape())
        return (zm * zm + zv) * self.sigma2() + zv * self.weight * self.weight

    def kl(self) -> torch.Tensor:
        """KL of z against N(0, z_prior_var) plus KL of w̃ against N(0, prior_var) (scalar)."""
        return kl_weights(self.z_mu, self.z_sigma2(), self.z_prior_var) + super().kl()

    @torch.no_grad()
    def add_kl_grad_(self, scale: float) -> None:
        """`BayesianMixin.add_kl_grad_` for w̃, and the same closed form for z."""
        super().add_kl_grad_(scale)
        accumulate_grad_(self.z_mu, self.z_mu / self.z_prior_var, scale)
        accumulate_grad_(self.z_log_sigma2, log_sigma2_kl_grad(self.z_log_sigma2, self.z_prior_var), scale)

    def z_log_alpha(self) -> torch.Tensor:
        """log α_z = log σ_z² − log μ_z² per unit [out]."""
        return self.z_log_sigma2 - torch.log(self.z_mu * self.z_mu + EPS)


class GroupScaledLinear(_GroupScaled, BayesLinear):
    """BC-GHS Linear: W = z[:, None]·w̃, z per output neuron."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, log_sigma2: float = -10.0
    ) -> None:
        super().__init__(in_features, out_features, bias, log_sigma2)
        self._init_groups(log_sigma2_z=-6.0)


class GroupScaledConv2d(_GroupScaled, BayesConv2d):
    """BC-GHS Conv2d: W = z[:, None, None, None]·w̃, z per output filter."""

    def __init__(self, *args, log_sigma2: float = -10.0, **kwargs) -> None:
        super().__init__(*args, log_sigma2=log_sigma2, **kwargs)
        self._init_groups(log_sigma2_z=-6.0)


def bc_ghs_convert(model: nn.Module, init_log_sigma2: float = -10.0) -> nn.Module:
    """Every nn.Linear / nn.Conv2d but the classifier gets BC-GHS group scales (z = 1, w̃ = the weight, whose
    prior N(0, s_l²) is scaled to the layer as Turbo-VBI's tables are), in place; returns `model`."""
    last = classifier(model)
    names = [n for n in target_layers(model) if model.get_submodule(n) is not last]
    if not names:
        raise ConfigError("BC-GHS needs a Linear/Conv2d layer besides the classifier to put group scales on")

    def make(name: str, layer: nn.Module) -> nn.Module:
        cls = GroupScaledLinear if type(layer) is nn.Linear else GroupScaledConv2d
        new = cls.from_plain(layer, init_log_sigma2)
        new.prior_var.fill_(layer_scale2(layer.weight))
        return new

    swap_layers(model, names, make)
    return model


class BCGHS:
    """The BC-GHS driver for any loop or `VariationalCallback`: KL per step, closed-form horseshoe scale updates
    after every epoch (`update_scales`).

    Args:
        model: after `bc_ghs_convert`.
        n_train, steps_per_epoch: as `TurboVBI`.
        tau0: scale of the global half-Cauchy.
    """

    def __init__(self, model: nn.Module, n_train: int, steps_per_epoch: int, tau0: float = 1.0) -> None:
        check_sizes(n_train, steps_per_epoch)
        if not (math.isfinite(tau0) and tau0 > 0):
            raise ConfigError(f"BC-GHS tau0 must be finite and > 0; got {tau0!r}")
        self.layers = [(n, m) for n, m in bayesian_layers(model) if isinstance(m, _GroupScaled)]
        if not self.layers:
            raise ConfigError("BCGHS needs a converted model: call bc_ghs_convert(model) first")
        self.n_train, self.steps_per_epoch, self.tau0, self.steps = n_train, steps_per_epoch, tau0, 0
        # E[1/ν], E[1/λ²] per unit; E[1/ξ], E[1/τ²] per layer: the horseshoe's auxiliary posteriors
        self.scales = {
            n: {"inv_nu": torch.ones(m.z_mu.shape, dtype=torch.float64),
                "inv_lam2": torch.ones(m.z_mu.shape, dtype=torch.float64),
                "inv_xi": 1.0, "inv_tau2": 1.0}
            for n, m in self.layers
        }  # fmt: skip

    def kl_loss(self) -> torch.Tensor:
        """Σ KL / N (scalar)."""
        return torch.stack([m.kl() for _, m in self.layers]).sum() / self.n_train

    def add_kl_grad(self) -> None:
        """Add the gradient of `kl_loss()` to the parameters' gradients in closed form (after backward)."""
        for _, m in self.layers:
            m.add_kl_grad_(1.0 / self.n_train)

    @torch.no_grad()
    def update_scales(self) -> None:
        """The closed-form mean-field updates of λ², ν, τ², ξ per layer (module docstring), then z's prior."""
        for name, m in self.layers:
            check_finite(f"of BC-GHS layer {name!r}", m.z_mu, m.z_log_sigma2, m.weight)
            s = self.scales[name]
            ez2 = (m.z_mu * m.z_mu + m.z_sigma2()).double().cpu()
            for _ in range(3):  # a few coordinate sweeps: the four updates depend on each other
                s["inv_lam2"] = 1.0 / (s["inv_nu"] + ez2 * s["inv_tau2"] / 2)
                s["inv_nu"] = 1.0 / (1.0 + s["inv_lam2"])
                rate = s["inv_xi"] + float((ez2 * s["inv_lam2"]).sum()) / 2
                s["inv_tau2"] = (ez2.numel() + 1) / 2 / rate
                s["inv_xi"] = 1.0 / (1.0 / self.tau0**2 + s["inv_tau2"])
            m.z_prior_var.copy_(1.0 / (s["inv_lam2"] * s["inv_tau2"]))

    def step(self) -> bool:
        """Count one optimizer step; after each epoch's last step update the scales (returns True then)."""
        self.steps += 1
        if self.steps % self.steps_per_epoch == 0:
            self.update_scales()
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """Step count and the auxiliary posteriors as JSON values (lists of floats)."""
        scales = {
            n: {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
            for n, s in self.scales.items()
        }
        return {"steps": self.steps, "scales": scales}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`'s values."""
        self.steps = int(state["steps"])
        for name, s in state["scales"].items():
            for key in ("inv_nu", "inv_lam2"):
                self.scales[name][key] = torch.tensor(s[key], dtype=torch.float64)
            self.scales[name]["inv_xi"], self.scales[name]["inv_tau2"] = (
                float(s["inv_xi"]),
                float(s["inv_tau2"]),
            )


def bc_ghs_masks(model: nn.Module, threshold: float = -3.0) -> Masks:
    """{"<layer>.weight": keep} dropping whole output units with log α_z > threshold (BC-GHS layers only)."""
    with torch.no_grad():
        out = {}
        for name, m in bayesian_layers(model):
            if isinstance(m, _GroupScaled):
                keep = (m.z_log_alpha() <= threshold).reshape(m._bshape())
                out[f"{name}.weight"] = keep.expand_as(m.weight).clone()
        return out
