"""WGSEF in the comparison: proximal SGD with the envelope penalty from the dense model, then the exact top-k."""

from __future__ import annotations

from sparsenets.optim import decay_free_groups
from sparsenets.pruning.adapter import Adapter, Sparsified, SparsifyContext, register_adapter
from sparsenets.wgsef.api import blocks


@register_adapter
class WGSEFAdapter(Adapter):
    """WGSEF (λ from the option "wgsef_lam", default 0.005; no weight decay on its tensors, as the spec advises)."""

    name, label, sparse_training = "wgsef", "WGSEF", True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        wgsef_blocks = blocks(ctx.dense, ctx.example, ctx.keep, ctx.option("wgsef_lam", 0.005), ctx.round_to)
        # the spec: no weight decay on the tensors the envelope regularizes (it holds its own ridge)
        free = decay_free_groups(ctx.dense, wgsef_blocks, ctx.weight_decay)
        return ctx.prox_train(wgsef_blocks, params=free, extra={"lam": wgsef_blocks[0].lam})
