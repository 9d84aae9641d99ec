"""WGSEF: exactly k groups per layer from a convex envelope penalty and its exact prox (../shared/specs/wgsef.md).

    blocks = sparsenets.wgsef.blocks(model, x[:1], keep=0.25, lam=5e-3)   # one block per coupled layer
    opt = sparsenets.wgsef.ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), blocks)
    ...your loop: loss.backward(); opt.step(); opt.zero_grad()   (a torch Optimizer: LR schedulers drive it)
    opt.finalize()                                                  # the exact top-k: exactly k groups each
    small = sparsenets.compact.compact(model, x[:1])                # an ordinary, physically smaller nn.Module

A budget is `keep`: a ratio in (0, 1] (1.0 keeps all) or a count of groups per layer; Torch-Pruning's
`pruning_ratio` p is keep = 1 − p. Blocks default to the WGSEF prox and the optimizer to the exact top-k.
"""

from sparsenets.wgsef import adapter  # noqa: F401  (registers the comparison adapter)
from sparsenets.wgsef.api import ProxBlock, ProxOptimizer, blocks, decay_free_groups, kept_count, wgsef_prox

__all__ = ["ProxBlock", "ProxOptimizer", "blocks", "decay_free_groups", "kept_count", "wgsef_prox"]
