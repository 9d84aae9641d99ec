"""Turbo-VBI and the Bayesian peers in the comparison (`sparsenets.compare`), registered on import.

- "turbovbi" (2-D MRF support), "vbi-iid" (spike-and-slab, π = λ), "ard" (Module B off): structured. From the
  trained dense model: one epoch that counts the caller's training set (N and steps per epoch, which the
  comparison does not pass to adapters) while training on densely, then convert, Turbo-VBI rounds with Adam for
  the remaining sparse-phase epochs, the pruning rule, and each layer's units ranked by the norm of their pruned
  posterior mean (ties broken by the unpruned one); the top k keep their posterior mean, the rest are zeroed,
  and the protocol's exact top-k, compaction and fine-tune follow. Weight-level sparsity inside kept units is
  not carried into the record (the protocol fine-tunes the compacted model unmasked).
- "bc-ghs": structured the same way, units ranked by −log α_z.
- "sparse-vd": unstructured masks (compression only): weights ranked by log α, exactly keep² of them kept (the
  budget every unstructured method meets); no fine-tune (it trains the whole budget itself).

Options (`ctx.options`): "bayes_lr" (Adam, default 1e-3), "turbovbi_rounds" (default: one per epoch),
"bc_ghs_tau0" (1.0).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sparsenets.masks import attach_masks
from sparsenets.optim import ProxOptimizer
from sparsenets.prox import topk_mask
from sparsenets.pruning.adapter import Adapter, Sparsified, SparsifyContext, register_adapter
from sparsenets.pruning.baselines import magnitude_blocks
from sparsenets.train.callbacks import Callback, TrainState
from sparsenets.turbovbi.callback import TurboVBI, VariationalCallback
from sparsenets.turbovbi.config import TurboVBIConfig
from sparsenets.turbovbi.model import bayesian_layers, convert, prune_masks, to_plain
from sparsenets.turbovbi.peers import BCGHS, SparseVD, bc_ghs_convert, log_alpha, sparse_vd_convert


class _CountData(Callback):
    """Counts optimizer steps and training examples (a forward pre-hook on the model) over one epoch."""

    def __init__(self, model: nn.Module) -> None:
        self.steps, self.examples = 0, 0
        self.handle = model.register_forward_pre_hook(self._count)

    def _count(self, module: nn.Module, args: Any) -> None:
        if module.training and args and isinstance(args[0], torch.Tensor):
            self.examples += int(args[0].shape[0])

    def after_step(self, state: TrainState) -> None:
        self.steps += 1


def count_epoch(ctx: SparsifyContext) -> tuple[int, int]:
    """Train `ctx.dense` one epoch with the caller's SGD, counting (N, steps per epoch)."""
    counter = _CountData(ctx.dense)
    try:
        ctx.train(ctx.dense, ctx.sgd(ctx.dense), 1, (counter,))
    finally:
        counter.handle.remove()
    return max(counter.examples, 1), max(counter.steps, 1)


def bayes_train(ctx: SparsifyContext, model: nn.Module, driver: Any, epochs: int) -> None:
    """`epochs` epochs of the caller's loop with Adam (no weight decay: the KL is the regulariser)."""
    opt = torch.optim.Adam(model.parameters(), lr=float(ctx.option("bayes_lr", 1e-3)))
    ctx.train(model, opt, epochs, (VariationalCallback(driver),))


def keep_units(ctx: SparsifyContext, plain: nn.Module, scores: dict[str, torch.Tensor]) -> Sparsified:
    """Zero all but each layer's top-k units by `scores` ({layer: (out,)}) and hand the exact top-k over."""
    blocks = magnitude_blocks(plain, ctx.example, ctx.keep, ctx.round_to)
    with torch.no_grad():
        for b in blocks:
            score = scores[b.layout.name].to(torch.float64)
            b.layout.scale_(topk_mask(score, b.k).to(b.layout.params[0].dtype))
    return Sparsified(plain, optimizer=ProxOptimizer(ctx.sgd(plain), blocks))


class _TurboFamily(Adapter):
    """Turbo-VBI with a given `support` (see the module docstring)."""

    support = "mrf2d"
    sparse_training = True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        n_train, steps = count_epoch(ctx)
        epochs = max(ctx.epochs - 1, 1)
        rounds = int(ctx.option("turbovbi_rounds", epochs))
        config = TurboVBIConfig(
            support=self.support, rounds=rounds, epochs_per_round=max(epochs // rounds, 1)
        )
        model = convert(ctx.dense, config)
        vbi = TurboVBI(model, config, n_train, steps)
        bayes_train(ctx, model, vbi, config.rounds * config.epochs_per_round)
        masks = prune_masks(model, config)
        scores = {}
        for name, layer in bayesian_layers(model):
            mu = layer.weight.detach()
            rows = mu.reshape(mu.shape[0], -1)
            pruned = (mu * masks[f"{name}.weight"]).reshape(mu.shape[0], -1)
            scores[name] = pruned.norm(dim=1) + 1e-6 * rows.norm(dim=1)
        plain = to_plain(model)
        out = keep_units(ctx, plain, scores)
        out.extra = {"rounds": rounds, "weights_kept_by_rule": int(sum(int(m.sum()) for m in masks.values()))}
        return out


@register_adapter
class TurboVBIAdapter(_TurboFamily):
    """Turbo-VBI, 2-D MRF support prior."""

    name, label, support = "turbovbi", "Turbo-VBI (MRF)", "mrf2d"


@register_adapter
class VBIIIDAdapter(_TurboFamily):
    """Spike-and-slab VBI: Module B replaced by π = λ."""

    name, label, support = "vbi-iid", "VBI i.i.d. spike-and-slab", "iid"


@register_adapter
class ARDAdapter(_TurboFamily):
    """ARD: Gaussian–Gamma, no support variable."""

    name, label, support = "ard", "ARD (Gaussian–Gamma)", "off"


@register_adapter
class BCGHSAdapter(Adapter):
    """BC-GHS: group horseshoe over output units (peers.py), units ranked by −log α_z."""

    name, label, sparse_training = "bc-ghs", "BC-GHS", True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        n_train, steps = count_epoch(ctx)
        model = bc_ghs_convert(ctx.dense)
        driver = BCGHS(model, n_train, steps, tau0=float(ctx.option("bc_ghs_tau0", 1.0)))
        bayes_train(ctx, model, driver, max(ctx.epochs - 1, 1))
        with torch.no_grad():
            scores = {n: -m.z_log_alpha().detach() for n, m in driver.layers}
        return keep_units(ctx, to_plain(model), scores)


@register_adapter
class SparseVDAdapter(Adapter):
    """Sparse VD, unstructured: the keep² of all weights with the lowest log α."""

    name, label = "sparse-vd", "Sparse VD (unstructured)"
    structured, fine_tunes = False, False

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        n_train, steps = count_epoch(ctx)
        model = sparse_vd_convert(ctx.dense)
        epochs = max(ctx.epochs - 1, 1)
        bayes_train(ctx, model, SparseVD(model, n_train, anneal_steps=steps * max(epochs // 2, 1)), epochs)
        with torch.no_grad():
            layers = bayesian_layers(model)
            la = [log_alpha(layer).flatten() for _, layer in layers]
            by_rule = int(sum(int((x <= 3.0).sum()) for x in la))
            flat = torch.cat(la)
            keep = topk_mask(-flat.double(), round(ctx.keep**2 * flat.numel()))
            masks, start = {}, 0
            for (name, layer), x in zip(layers, la):
                masks[f"{name}.weight"] = keep[start : start + x.numel()].reshape(layer.weight.shape)
                start += x.numel()
        plain = to_plain(model)
        attach_masks(plain, masks)
        return Sparsified(plain, masks=masks, extra={"weights_log_alpha_le_3": by_rule})
