"""Turbo-VBI on a model: convert its layers, hold each layer's q(ρ), q(s) and support prior, run Module A's
ρ/s-steps with Module B's message passing between w-steps, prune, and merge back into ordinary layers.

Per converted layer (buffers on the Bayesian layer, so checkpoints and `.to(device)` carry them):
`a_t`, `b_t` (q(ρ) = Gamma(ã, b̃)), `pi_tilde` (q(s = 1)), `prior_logodds` (logit π from Module B),
`scale2` (s_l² = mean μ² at conversion) and `prior_var` = b̃/ã, the w-step's prior variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.grids import from_support_grid, support_grid
from sparsenets.groups import coupled_layouts
from sparsenets.masks import Masks, attach_masks
from sparsenets.surgery import replace_module
from sparsenets.turbovbi.bp import support_prior_logodds
from sparsenets.turbovbi.config import TurboVBIConfig
from sparsenets.turbovbi.layers import BAYES_TYPES, BayesianMixin, bayesian_from_plain
from sparsenets.turbovbi.prior import (
    GammaTables,
    check_finite,
    extrinsic_logodds,
    marginal_unary_logodds,
    rho_step,
    s_logodds,
    s_step,
    stationary_logodds,
)

PLAIN_TYPES = (nn.Linear, nn.Conv2d)
COUPLED = ("mrf2d", "chain")  # supports that need the layer's 2-D support grid


def target_layers(model: nn.Module, targets: Iterable[str] | None = None) -> list[str]:
    """Names of the layers to convert: `targets` (each must be an nn.Linear / nn.Conv2d), or every one."""
    if any(isinstance(m, BAYES_TYPES) for m in model.modules()):
        raise ConfigError(
            "the model already has Bayesian layers; convert a plain model (or call to_plain first)"
        )
    if targets is None:
        names = [n for n, m in model.named_modules() if type(m) in PLAIN_TYPES]
    else:
        names = list(targets)
        modules = dict(model.named_modules())
        for name in names:
            if name not in modules:
                raise ConfigError(
                    f"layer {name!r} is not in the model; name submodules as model.named_modules()"
                )
            if type(modules[name]) not in PLAIN_TYPES:
                raise ConfigError(
                    f"layer {name!r} is a {type(modules[name]).__name__}: only nn.Linear and nn.Conv2d can be "
                    "made Bayesian; leave it out of targets"
                )
    if not names:
        raise ConfigError("the model has no nn.Linear or nn.Conv2d layer to convert")
    if "" in names:  # in-place conversion swaps submodules; a bare layer has no parent to swap it in
        raise ConfigError(
            "the model is itself a single layer: wrap it, e.g. nn.Sequential(layer), to convert it"
        )
    return names


def swap_layers(model: nn.Module, names: Iterable[str], make: Callable[[str, nn.Module], nn.Module]) -> None:
    """Replace each named layer in place by `make(name, layer)` (PEFT-style conversion)."""
    for name in names:
        replace_module(model, name, make(name, model.get_submodule(name)))


def bayesian_layers(model: nn.Module) -> list[tuple[str, BayesianMixin]]:
    """(name, layer) of every Bayesian layer in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BAYES_TYPES)]


def layer_scale2(weight: torch.Tensor) -> float:
    """s_l² = mean(w²) of a layer's weight (floored so an all-zero layer still gets positive tables)."""
    return max(float(weight.detach().double().pow(2).mean()), 1e-12)


def layer_tables(config: TurboVBIConfig, scale2: float) -> GammaTables:
    """The Gamma tables of a layer of scale s_l² (b, b̄ times s_l² when `config.scale_to_layer`)."""
    tables = config.tables()
    return tables.scaled(scale2) if config.scale_to_layer else tables


def _half(config: TurboVBIConfig) -> float:
    return 0.5 if config.constants == "real" else 1.0


@torch.no_grad()
def init_turbo_state(layer: BayesianMixin, name: str, config: TurboVBIConfig, scale2: float) -> None:
    """The spec's initialisation of a freshly converted layer: π = ½ (i.i.d.: λ), π̃ = `init_pi_tilde`, E[ρ] =
    `init_rho_factor`·ρ* with ρ* = (a ln(b/b̄) + logit π)/(b − b̄) the s-step's activity threshold (exact for
    a = ā; where b ≤ b̄ it has none and q(ρ) starts from the ρ-step instead). ARD ("off"): q(ρ) from the ρ-step."""
    w = layer.weight
    t = layer_tables(config, scale2)
    p01, p10 = config.transitions(name)
    prior = stationary_logodds(p01, p10) if config.support == "iid" else 0.0
    pi_t = torch.full_like(w, 1.0 if config.support == "off" else config.init_pi_tilde)
    rho_star = (t.a * math.log(t.b / t.b_bar) + prior) / (t.b - t.b_bar) if t.b > t.b_bar else -1.0
    if config.support == "off" or rho_star <= 0:
        a_t, b_t = rho_step(w * w + layer.sigma2(), pi_t, t, config.constants)
    else:
        a_t = pi_t * t.a + (1 - pi_t) * t.a_bar + _half(config)
        b_t = a_t / (config.init_rho_factor * rho_star)
    layer.register_buffer("scale2", torch.tensor(scale2, dtype=w.dtype, device=w.device))
    layer.register_buffer("a_t", a_t.clone())
    layer.register_buffer("b_t", b_t.clone())
    layer.register_buffer("pi_tilde", pi_t)
    layer.register_buffer("prior_logodds", torch.full_like(w, prior))
    layer.prior_var.copy_(b_t / a_t)


def convert(
    model: nn.Module, config: TurboVBIConfig | None = None, targets: Iterable[str] | None = None
) -> nn.Module:
    """Make the layers of a (dense-trained) model Bayesian, in place, with the spec's Turbo-VBI initialisation.

    Args:
        model: a model whose weights are the dense warm-up's (s_l² and μ come from them).
        config: Turbo-VBI settings (default `TurboVBIConfig()`).
        targets: layer names to convert (default: every nn.Linear and nn.Conv2d); any other type named is a
            ConfigError, as is a non-square conv kernel with a coupled support ("mrf2d", "chain").

    Returns:
        `model`, its layers replaced by `BayesLinear` / `BayesConv2d` (weight = μ, same parameter names).
    """
    config = config or TurboVBIConfig()
    names = target_layers(model, targets)
    if config.support in COUPLED:
        for name in names:
            support_grid(model.get_submodule(name).weight)  # refuses a kernel with no support grid, up front

    def make(name: str, layer: nn.Module) -> nn.Module:
        s2 = layer_scale2(layer.weight)
        new = bayesian_from_plain(layer, config.init_log_sigma2 + math.log(s2))
        init_turbo_state(new, name, config, s2)
        return new

    swap_layers(model, names, make)
    return model


def _to_grid(x: torch.Tensor, coupled: bool) -> torch.Tensor:
    return support_grid(x) if coupled else x.reshape(x.shape[0], -1)


def _from_grid(g: torch.Tensor, shape: torch.Size, coupled: bool) -> torch.Tensor:
    return from_support_grid(g, shape) if coupled else g.reshape(shape)


@torch.no_grad()
def update_layer(layer: BayesianMixin, name: str, config: TurboVBIConfig) -> dict[str, float]:
    """One turbo round's prior update of a layer after its w-step: ρ-step, s-step, A→B message, Module B on the
    support grid, s-step, ρ-step; sets `prior_var` = b̃/ã for the next w-step (ARD: the ρ-step only).

    Returns:
        {"pi_mean": mean π̃, "active": fraction π̃ ≥ ½, "prior_mean": mean π}.
    Raises:
        NonFinitePosteriorError (a SparsenetsError) when μ, σ² or the updated posterior holds NaN/inf.
    """
    check_finite(f"of layer {name!r} (μ, log σ²)", layer.weight, layer.log_sigma2)
    t = layer_tables(config, float(layer.scale2))
    m2 = layer.weight * layer.weight + layer.sigma2()
    if config.support == "off":
        pi_t = torch.ones_like(m2)
        a_t, b_t = rho_step(m2, pi_t, t, config.constants)
        prior = layer.prior_logodds
    else:
        a_t, b_t = rho_step(m2, layer.pi_tilde, t, config.constants)
        post = s_logodds(a_t, b_t, layer.prior_logodds, t)
        if config.messages == "extrinsic":
            unary = extrinsic_logodds(post, layer.prior_logodds)
        else:  # the demo's: the posterior with B's prior counted twice, the full marginal back
            unary = marginal_unary_logodds(post, layer.prior_logodds)
        coupled = config.support in COUPLED
        p01, p10 = config.transitions(name)
        grid = support_prior_logodds(
            _to_grid(unary, coupled), config.support, p01, p10, config.sweeps, config.damping,
            variant=config.messages,
        )  # fmt: skip
        prior = _from_grid(grid, unary.shape, coupled)
        pi_t = s_step(a_t, b_t, prior, t)
        a_t, b_t = rho_step(m2, pi_t, t, config.constants)
    check_finite(f"of layer {name!r} (q(ρ), q(s))", a_t, b_t, pi_t, prior)
    layer.a_t.copy_(a_t)
    layer.b_t.copy_(b_t)
    layer.pi_tilde.copy_(pi_t)
    layer.prior_logodds.copy_(prior)
    layer.prior_var.copy_(b_t / a_t)
    return {
        "pi_mean": float(pi_t.mean()),
        "active": float((pi_t >= 0.5).float().mean()),
        "prior_mean": float(torch.sigmoid(prior).mean()),
    }


@torch.no_grad()
def keep_mask(layer: BayesianMixin, config: TurboVBIConfig) -> torch.Tensor:
    """The pruning rule on one layer → bool keep mask (weight-shaped).

    "spec": prune iff π̃ < ½ and |μ| < τ_l (τ_l = prune_tau·s_l); "pi": prune iff π̃ < ½; "demo": prune iff
    |μ| < 0.01. ARD ("off") has no q(s): "spec" and "pi" prune iff |μ| < τ_l there.
    """
    mu = layer.weight.abs()
    big = mu >= config.prune_tau * math.sqrt(float(layer.scale2))
    if config.prune == "demo":
        return mu >= 0.01
    if config.support == "off":
        return big
    active = layer.pi_tilde >= 0.5
    return active if config.prune == "pi" else active | big


def prune_masks(model: nn.Module, config: TurboVBIConfig) -> Masks:
    """{"<layer>.weight": bool keep mask} of every Turbo-VBI layer of `model` by `config.prune`."""
    return {f"{name}.weight": keep_mask(layer, config) for name, layer in bayesian_layers(model)}


def to_plain(model: nn.Module) -> nn.Module:
    """Merge every Bayesian layer back into a plain nn.Linear / nn.Conv2d (posterior mean), in place."""
    for name, layer in bayesian_layers(model):
        replace_module(model, name, layer.to_plain())
    return model


def unit_masks(model: nn.Module, masks: Masks, example: torch.Tensor) -> Masks:
    """Extend weight masks to whole units: an output neuron/filter whose incoming weights are all pruned loses
    its bias, BatchNorm γ/β and its input slice in the next layers too (its coupled group, `coupled_layouts`), so
    `sparsenets.compact` can remove it. Exact for ReLU nets without BatchNorm after the pruned layer (a dead
    unit then outputs 0); with BatchNorm it also drops the unit's constant β — part of the pruning rule.

    Args:
        model: the plain model; masks: {"<layer>.weight": bool}; example: (1, ...) one input for tracing.
    """
    out = {k: v.clone() for k, v in masks.items()}  # no torch.no_grad: Torch-Pruning traces with autograd
    for layout in coupled_layouts(model, example.to(next(model.parameters()).device)):
        root = f"{layout.name}.weight"
        if root not in masks:
            continue
        alive = masks[root].reshape(masks[root].shape[0], -1).any(dim=1)
        for pname, m in layout.masks(alive).items():
            out[pname] = out[pname] & m if pname in out else m
    return out


def merge_pruned(
    model: nn.Module, masks: Masks, example: torch.Tensor | None = None
) -> tuple[nn.Module, Masks]:
    """Merge a Bayesian model into plain layers, extend `masks` to dead units (when `example` is given) and
    attach them (pruned weights become exactly 0 and stay 0 in any later training).

    Returns:
        (the plain model, in place; the masks in force, {param name: bool}).
    """
    plain = to_plain(model)
    if example is not None:
        masks = unit_masks(plain, masks, example)
    attach_masks(plain, masks)
    return plain, masks


def prune(
    model: nn.Module, config: TurboVBIConfig, example: torch.Tensor | None = None
) -> tuple[nn.Module, Masks]:
    """Turbo-VBI's pruning rule, then `merge_pruned`: (plain masked model, masks)."""
    return merge_pruned(model, prune_masks(model, config), example)


@torch.no_grad()
def layer_stats(model: nn.Module) -> list[dict[str, float | int | str]]:
    """Per-layer sparsity of every Linear/Conv2d weight, then a "total" row.

    Each row: layer, weights |W|, nnz |W≠0|, compression |W|/|W≠0|, units (output neurons/filters),
    units_left (with a non-zero incoming weight), inputs_left (inputs/input channels with a non-zero weight).
    """
    rows: list[dict[str, float | int | str]] = []
    for name, m in model.named_modules():
        if not isinstance(m, PLAIN_TYPES):
            continue
        nz = m.weight.detach() != 0
        n, k = nz.numel(), int(nz.sum())
        rows.append({
            "layer": name, "weights": n, "nnz": k, "compression": n / max(k, 1), "units": nz.shape[0],
            "units_left": int(nz.reshape(nz.shape[0], -1).any(1).sum()),
            "inputs_left": int(nz.transpose(0, 1).reshape(nz.shape[1], -1).any(1).sum()),
        })  # fmt: skip
    total_w = sum(int(r["weights"]) for r in rows)
    total_nz = sum(int(r["nnz"]) for r in rows)
    rows.append(
        {"layer": "total", "weights": total_w, "nnz": total_nz, "compression": total_w / max(total_nz, 1)}
    )
    return rows
