"""WGSEF in the comparison: proximal SGD with the envelope penalty from the dense model, then the exact top-k."""

from __future__ import annotations

from sparsenets.optim import decay_free_groups
from sparsenets.pruning.adapter import Adapter, Sparsified, SparsifyContext, register_adapter
from sparsenets.wgsef.api import blocks


@register_adapter
class WGSEFAdapter(Adapter):
    """WGSEF (λ from the option "wgsef_lam", default 0.005; no weight decay on its tensors, as the spec advises)."""

    name, label = "wgsef", "WGSEF"
    sparse_training = True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        lam = ctx.option("wgsef_lam", 0.005)
        wgsef_blocks = blocks(ctx.dense, ctx.example, ctx.keep, lam, round_to=ctx.round_to)
        params = decay_free_groups(ctx.dense, wgsef_blocks, ctx.weight_decay)
        return ctx.prox_train(wgsef_blocks, params=params, extra={"lam": lam})
