"""The arms of a Turbo-VBI study: how each trains from the dense warm-up, and how each prunes at one threshold
of its own sweep (so every arm can be compared at matched error).

An arm is `train(job) -> trained model` (saved once per seed) and `prune(trained, t, job) -> plain model` whose
zeros are the pruned weights, deterministic in (trained, t, seed), so the study re-creates the chosen point for
latency and heat maps. Dead units (no input or no output left) are zeroed whole (`drop_dead_units_`) for every
arm alike, so compaction sees them.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.experiments.turbovbi.common import Split, TurboStudyConfig, chain_layers, fit, steps_per_epoch
from sparsenets.groups import coupled_layouts
from sparsenets.masks import attach_masks, detach_masks
from sparsenets.optim import ProxOptimizer
from sparsenets.pruning import group_lasso_blocks
from sparsenets.structure import drop_dead_units_
from sparsenets.turbovbi.callback import TurboVBICallback, VariationalCallback
from sparsenets.turbovbi.config import TurboVBIConfig
from sparsenets.turbovbi.model import convert, prune_masks, to_plain
from sparsenets.turbovbi.peers import (
    BCGHS,
    SparseVD,
    bc_ghs_convert,
    bc_ghs_masks,
    sparse_vd_convert,
    sparse_vd_masks,
)

# |μ| thresholds in units of the layer's rms weight s_l
TAUS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
MAGNITUDE_T = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5)  # Han et al.: prune |w| < t·std of the layer
GROUP_T = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)  # prune groups with norm < t·(largest norm of the layer)


@dataclass
class Job:
    """What an arm needs: the study config, a fresh model, the dense warm-up weights, the data and the seed.

    Attributes:
        cfg: the study config.
        make_model: a fresh plain model (its architecture).
        dense_state: the dense warm-up's state dict.
        train: (x (N, ...), y (N,)) training split.
        example: (1, ...) one input, for tracing.
        seed: the seed (shuffling, sampling, fine-tunes).
        device: where training runs.
    """

    cfg: TurboStudyConfig
    make_model: Callable[[], nn.Module]
    dense_state: dict[str, torch.Tensor]
    train: Split
    example: torch.Tensor
    seed: int
    device: str

    def dense(self) -> nn.Module:
        """A fresh copy of the dense warm-up model."""
        model = self.make_model()
        model.load_state_dict(self.dense_state)
        return model

    def epochs(self, n: int) -> int:
        """Optimizer steps of `n` epochs."""
        return n * steps_per_epoch(self.train, self.cfg)


@dataclass(frozen=True)
class Arm:
    """One arm: `train(job)` → the trained model; `prune(trained, t, job)` → a plain model, zeros pruned;
    `rebuild(job)` → an empty model of the trained type (to load a saved state); `thresholds` its sweep."""

    name: str
    label: str
    thresholds: tuple[float, ...]
    train: Callable[[Job], nn.Module]
    prune: Callable[[nn.Module, float, Job], nn.Module]
    rebuild: Callable[[Job], nn.Module]


def _finish(model: nn.Module) -> nn.Module:
    """Zero dead units whole, so compaction and the unit counts agree (every arm alike)."""
    drop_dead_units_(chain_layers(model))
    return model


# ----------------------------------------------------------------------------------------------- dense, magnitude
def _dense_train(job: Job) -> nn.Module:
    return job.dense()


def _dense_prune(trained: nn.Module, t: float, job: Job) -> nn.Module:
    return copy.deepcopy(trained)


def _magnitude_prune(trained: nn.Module, t: float, job: Job) -> nn.Module:
    """Han et al.: prune |w| < t·std per layer, then a masked fine-tune of `finetune_epochs` (Adam)."""
    model = copy.deepcopy(trained)
    masks = {f"{n}.weight": m.weight.detach().abs() >= t * m.weight.detach().std() for n, m in _named(model)}
    return _masked_finetune(model, masks, job)


def _masked_finetune(model: nn.Module, masks: dict[str, torch.Tensor], job: Job) -> nn.Module:
    """Zero the pruned weights, fine-tune `finetune_epochs` with them held at 0 (Adam), zero dead units."""
    attach_masks(model, masks)  # pruned weights get zero gradients and stay 0 under Adam
    if job.cfg.finetune_epochs:
        torch.manual_seed(job.seed)
        fit(model, job.train, job.cfg, job.seed + 7919, job.epochs(job.cfg.finetune_epochs), job.device)
    detach_masks(model)
    return _finish(model.cpu())


def _finetuned(pruned: nn.Module, job: Job) -> nn.Module:
    """A non-magnitude arm's pruned plain model, fine-tuned like magnitude pruning when `finetune_all`."""
    if not job.cfg.finetune_all or not job.cfg.finetune_epochs:
        return pruned
    masks = {f"{n}.weight": m.weight.detach() != 0 for n, m in _named(pruned)}
    return _masked_finetune(pruned, masks, job)


def _named(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]


# ----------------------------------------------------------------------------------------------- group lasso
def _group_lasso_train(job: Job) -> nn.Module:
    """SSL's group lasso (proximal, on the coupled neuron/filter groups) for as many epochs as Turbo-VBI's
    rounds, from the dense warm-up, with Adam; λ per layer as `group_lasso_blocks`."""
    model = job.dense().to(job.device)
    blocks = group_lasso_blocks(model, job.example, keep=1.0, lam=job.cfg.group_lasso_lam)
    opt = ProxOptimizer(torch.optim.Adam(model.parameters(), lr=job.cfg.lr), blocks, select=None)
    steps = job.epochs(job.cfg.rounds * job.cfg.epochs_per_round)
    return fit(model, job.train, job.cfg, job.seed, steps, job.device, optimizer=opt).cpu()


def _group_prune(trained: nn.Module, t: float, job: Job) -> nn.Module:
    model = copy.deepcopy(trained)
    layouts = coupled_layouts(model, job.example)  # traced with autograd on, so outside no_grad
    with torch.no_grad():
        for layout in layouts:
            norms = layout.norms()
            for name, mask in layout.masks(norms >= t * norms.max()).items():
                model.get_parameter(name).mul_(mask)
    return _finetuned(_finish(model), job)


# ----------------------------------------------------------------------------------------------- Turbo-VBI family
def turbo_config(cfg: TurboStudyConfig, support: str, p: float | None = None) -> TurboVBIConfig:
    """The study's Turbo-VBI settings for one support ("mrf2d", "chain", "iid", "off" = ARD)."""
    return TurboVBIConfig(
        support=support, p01=p or cfg.p01, p10=p or cfg.p10, sweeps=cfg.bp_sweeps, damping=cfg.damping,
        rounds=cfg.rounds, epochs_per_round=cfg.epochs_per_round,
    )  # fmt: skip


def _turbo_arm(name: str, label: str, support: str, p: float | None = None) -> Arm:
    def rebuild(job: Job) -> nn.Module:
        return convert(job.dense(), turbo_config(job.cfg, support, p))

    def train(job: Job) -> nn.Module:
        conf = turbo_config(job.cfg, support, p)
        model = convert(job.dense(), conf).to(job.device)
        spe = steps_per_epoch(job.train, job.cfg)
        callback = TurboVBICallback(model, conf, n_train=job.train[0].shape[0], steps_per_epoch=spe)
        torch.manual_seed(job.seed)  # the local reparameterisation's noise
        fit(model, job.train, job.cfg, job.seed, callback.vbi.total_steps, job.device, (callback,))
        return model.cpu()

    def prune(trained: nn.Module, t: float, job: Job) -> nn.Module:
        """The spec's rule (prune iff π̃ < ½ and |μ| < τ·s_l; ARD: |μ| < τ·s_l), swept over τ = t; t = inf is
        the π̃ < ½ rule alone."""
        conf = turbo_config(job.cfg, support, p)
        rule = {"prune": "pi"} if math.isinf(t) else {"prune": "spec", "prune_tau": t}
        model = copy.deepcopy(trained)
        return _finetuned(_masked_plain(model, prune_masks(model, dataclasses.replace(conf, **rule))), job)

    taus = TAUS if support == "off" else (*TAUS, math.inf)
    return Arm(name, label, taus, train, prune, rebuild)


def _plain_arm(name: str, label: str, thresholds: tuple[float, ...], train: Any, prune: Any) -> Arm:
    return Arm(name, label, thresholds, train, prune, lambda job: job.make_model())


def get_arm(name: str) -> Arm:
    """The arm called `name` ("dense", "magnitude", "group-lasso", "turbo-mrf2d", "turbo-chain", "vbi-iid",
    "ard", "sparse-vd", "bc-ghs", or "turbo-mrf2d-p<p>" for p01 = p10 = p)."""
    fixed = {
        "dense": lambda: _plain_arm("dense", "dense", (0.0,), _dense_train, _dense_prune),
        "magnitude": lambda: _plain_arm(
            "magnitude", "magnitude + FT", MAGNITUDE_T, _dense_train, _magnitude_prune
        ),
        "group-lasso": lambda: _plain_arm(
            "group-lasso", "group lasso", GROUP_T, _group_lasso_train, _group_prune
        ),
        "turbo-mrf2d": lambda: _turbo_arm("turbo-mrf2d", "Turbo-VBI (mrf2d)", "mrf2d"),
        "turbo-chain": lambda: _turbo_arm("turbo-chain", "Turbo-VBI (chain)", "chain"),
        "vbi-iid": lambda: _turbo_arm("vbi-iid", "i.i.d. spike-and-slab", "iid"),
        "ard": lambda: _turbo_arm("ard", "ARD", "off"),
    }
    if name in fixed:
        return fixed[name]()
    if name.startswith("turbo-mrf2d-p"):
        p = float(name.removeprefix("turbo-mrf2d-p"))
        return _turbo_arm(name, f"Turbo-VBI (mrf2d, p={p:g})", "mrf2d", p)
    peer = _peer_arm(name)
    if peer is None:
        raise ConfigError(f"unknown arm {name!r}")
    return peer


LOG_ALPHA_T = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # Sparse VD: keep log α ≤ t (published rule t = 3)
GROUP_LOG_ALPHA_T = (-5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0)  # BC-GHS: keep units with log α_z ≤ t (≈ −3)


def _masked_plain(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Merge a Bayesian model into plain layers (posterior means) and zero the pruned weights."""
    plain = to_plain(model)
    with torch.no_grad():
        for pname, keep in masks.items():
            plain.get_parameter(pname).mul_(keep)
    return _finish(plain)


def _peer_arm(name: str) -> Arm | None:
    """Sparse VD and BC-GHS from `sparsenets.turbovbi.peers`, trained as long as Turbo-VBI's rounds from the
    dense warm-up, KL annealed over the same first fraction (None for another name)."""
    if name not in ("sparse-vd", "bc-ghs"):
        return None
    svd = name == "sparse-vd"

    def rebuild(job: Job) -> nn.Module:
        return sparse_vd_convert(job.dense()) if svd else bc_ghs_convert(job.dense())

    def train(job: Job) -> nn.Module:
        model = rebuild(job).to(job.device)
        spe, n = steps_per_epoch(job.train, job.cfg), job.train[0].shape[0]
        steps = job.epochs(job.cfg.rounds * job.cfg.epochs_per_round)
        anneal = max(1, round(steps * turbo_config(job.cfg, "mrf2d").kl_anneal))
        driver = SparseVD(model, n, anneal_steps=anneal) if svd else BCGHS(model, n, spe)
        torch.manual_seed(job.seed)
        fit(model, job.train, job.cfg, job.seed, steps, job.device, (VariationalCallback(driver),))
        return model.cpu()

    def prune(trained: nn.Module, t: float, job: Job) -> nn.Module:
        model = copy.deepcopy(trained)
        return _finetuned(
            _masked_plain(model, sparse_vd_masks(model, t) if svd else bc_ghs_masks(model, t)), job
        )

    label = "Sparse VD" if svd else "BC-GHS (ours: output groups)"
    return Arm(name, label, LOG_ALPHA_T if svd else GROUP_LOG_ALPHA_T, train, prune, rebuild)
