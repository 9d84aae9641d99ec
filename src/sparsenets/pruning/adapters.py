"""The pruning baselines as comparison adapters (core: they use no method package).

- `l1_filter`: Li et al. 2017 — rank each layer's filters by the L1 norm of their own weights, keep the top k
  of the trained dense model, fine-tune.
- `tp_depgraph`: Torch-Pruning one-shot — its group L2 importance over each DepGraph group, the top k kept, the
  rest removed physically by DepGraph's own surgery, fine-tune.
- `group_lasso`: SSL — proximal group-lasso training from the dense model (λ matched per layer to WGSEF's band
  threshold), exact top-k, fine-tune.
- `tp_groupnorm`: Torch-Pruning's GroupNorm sparse training from the dense model, exact top-k by group norm,
  fine-tune.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from sparsenets.optim import ProxOptimizer, kept_count
from sparsenets.prox import topk_mask
from sparsenets.pruning.adapter import Adapter, Sparsified, SparsifyContext, register_adapter
from sparsenets.pruning.baselines import (
    GroupNormRegularizer,
    classifier,
    group_lasso_blocks,
    magnitude_blocks,
    tp_groupnorm_pruner,
)


@register_adapter
class L1Filter(Adapter):
    """L1-norm filter pruning of the trained dense model (each filter scored by its own weights only)."""

    name, label = "l1_filter", "L1-norm filters"

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        model = ctx.dense
        blocks = magnitude_blocks(model, ctx.example, ctx.keep, ctx.round_to)
        with torch.no_grad():
            for b in blocks:
                root = next(
                    mb for mb in b.layout.members if mb.name == f"{b.layout.name}.weight" and mb.axis == 0
                )
                l1 = root.param.detach().reshape(root.shape2).abs().sum(dim=1)
                b.layout.scale_(topk_mask(l1, b.k).to(l1.dtype))  # the exact top-k below then keeps these
        return Sparsified(model, optimizer=ProxOptimizer(ctx.sgd(model), blocks))


@register_adapter
class TPDepGraph(Adapter):
    """Torch-Pruning one-shot: group L2 importance per DepGraph group, exactly the budgeted count kept."""

    name, label = "tp_depgraph", "TP DepGraph"

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        model = ctx.dense.cpu().eval()
        importance = tp.importance.GroupMagnitudeImportance(p=2)
        dg = tp.DependencyGraph().build_dependency(model, example_inputs=ctx.example.cpu())
        kept = []
        roots = (nn.Conv2d, nn.Linear)
        for group in dg.get_all_groups(ignored_layers=[classifier(model)], root_module_types=roots):
            scores = importance(group)
            k = kept_count(len(scores), ctx.keep, ctx.round_to)
            drop = (~topk_mask(scores, k)).nonzero().flatten().tolist()
            kept.append(k)
            if drop:  # TP's own surgery removes the channel from every coupled layer
                dg.get_pruning_group(group[0].dep.target.module, group[0].dep.handler, idxs=drop).prune()
        return Sparsified(model.train(), compacted=True, extra={"tp_kept": kept})


@register_adapter
class GroupLasso(Adapter):
    """SSL group lasso by proximal SGD from the dense model, then the exact top-k."""

    name, label, sparse_training = "group_lasso", "group lasso (SSL)", True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        lam = ctx.option("group_lasso_lam", 0.003)
        blocks = group_lasso_blocks(ctx.dense, ctx.example, ctx.keep, lam, ctx.round_to)
        return ctx.prox_train(blocks, extra={"lam": [b.lam for b in blocks]})


@register_adapter
class TPGroupNorm(Adapter):
    """Torch-Pruning's GroupNorm sparse training from the dense model, then the exact top-k by group norm."""

    name, label, sparse_training = "tp_groupnorm", "TP GroupNorm", True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        reg = GroupNormRegularizer(tp_groupnorm_pruner(ctx.dense, ctx.example, ctx.option("tp_reg", 1e-3)))
        # blocks with no penalty: plain SGD plus TP's regulariser, then the exact top-k by group norm
        return ctx.prox_train(
            magnitude_blocks(ctx.dense, ctx.example, ctx.keep, ctx.round_to), callbacks=(reg,)
        )
