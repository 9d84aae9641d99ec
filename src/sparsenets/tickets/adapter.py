"""IMP with rewinding in the comparison: unstructured, so compression only (no latency claim).

From the trained dense model: `rounds` rounds of global magnitude pruning of the prunable weights (each round
keeps keep^(1/rounds) of the survivors), each followed by rewinding the survivors to θ0 and retraining with the
mask held (Frankle & Carbin 2019). The weight budget is keep² of the weights, the parameter fraction a structured
method keeps at a per-layer keep ratio of `keep`, so both sit at about the same compression.
"""

from __future__ import annotations

from sparsenets.masks import HoldMasks, get_masks
from sparsenets.pruning.adapter import Adapter, Sparsified, SparsifyContext, register_adapter
from sparsenets.tickets.imp import prunable_names, prune_and_rewind
from sparsenets.tickets.prune import level_keep


@register_adapter
class IMPAdapter(Adapter):
    """Unstructured IMP with rewinding to θ0 ("imp_rounds" rounds, default 1; each retrains "imp_epochs", by
    default as long as the dense reference trains in all)."""

    name, label = "imp", "IMP (unstructured)"
    structured, fine_tunes = False, False

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        model, names = ctx.dense, prunable_names(ctx.dense)
        rounds = int(ctx.option("imp_rounds", 1))
        per_round = (ctx.keep**2) ** (1.0 / rounds)
        init = {n: ctx.init_state[n] for n in names}
        for r in range(1, rounds + 1):
            prune_and_rewind(model, names, level_keep(per_round, r), init)
            ctx.train(model, ctx.sgd(model), int(ctx.option("imp_epochs", ctx.epochs)), (HoldMasks(),))
        return Sparsified(model, masks=get_masks(model), extra={"rounds": rounds})
