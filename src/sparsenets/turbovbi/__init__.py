"""Turbo-VBI: structured Bayesian compression with a clustered-support prior (../shared/specs/turbovbi.md),
with the Bayesian peers (i.i.d. spike-and-slab, ARD, Sparse VD, BC-GHS) in the same framework.

On your own dense-trained model (here a small MLP on random data; `Trainer(callbacks=[cb])` works alike):
```python
import torch, sparsenets.turbovbi as tv
from sparsenets.compact import compact
x, y = torch.randn(256, 20), torch.randint(0, 3, (256,))
model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))  # your trained model
config = tv.TurboVBIConfig(rounds=3, epochs_per_round=1)
vbi = tv.TurboVBI(tv.convert(model, config), config, n_train=256, steps_per_epoch=8)  # Bayesian layers, in place
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for i in range(vbi.total_steps):  # the w-step epochs; step() runs the ρ/s/BP updates at each round's end
    b = slice(i % 8 * 32, i % 8 * 32 + 32)
    loss = torch.nn.functional.cross_entropy(model(x[b]), y[b]) + vbi.kl_loss()
    opt.zero_grad(); loss.backward(); opt.step(); vbi.step()
plain, masks = tv.prune(model, config, x[:1])  # ordinary layers, masks {name: bool} in force
small = compact(plain, x[:1])                    # dead neurons removed: a physically smaller model
```
Pieces: `convert`/`to_plain` (PEFT-style layer swap; `weight` stays the posterior mean μ), `TurboVBI` (plain
loop) and `TurboVBICallback` (Trainer), `prune`/`prune_masks`/`layer_stats`; Module A/B math in `prior`/`bp`.
"""

from sparsenets.turbovbi import adapter  # noqa: F401  (registers the comparison adapters)
from sparsenets.turbovbi.callback import TurboVBI, TurboVBICallback, VariationalCallback
from sparsenets.turbovbi.config import TurboVBIConfig
from sparsenets.turbovbi.layers import BayesConv2d, BayesLinear
from sparsenets.turbovbi.model import (
    bayesian_layers,
    convert,
    layer_stats,
    merge_pruned,
    prune,
    prune_masks,
    to_plain,
    unit_masks,
    update_layer,
)
from sparsenets.turbovbi.peers import (
    BCGHS,
    SparseVD,
    bc_ghs_convert,
    bc_ghs_masks,
    log_alpha,
    sparse_vd_convert,
    sparse_vd_kl,
    sparse_vd_masks,
)

__all__ = [
    "BCGHS",
    "BayesConv2d",
    "BayesLinear",
    "SparseVD",
    "TurboVBI",
    "TurboVBICallback",
    "TurboVBIConfig",
    "VariationalCallback",
    "bayesian_layers",
    "bc_ghs_convert",
    "bc_ghs_masks",
    "convert",
    "layer_stats",
    "log_alpha",
    "merge_pruned",
    "prune",
    "prune_masks",
    "sparse_vd_convert",
    "sparse_vd_kl",
    "sparse_vd_masks",
    "to_plain",
    "unit_masks",
    "update_layer",
]
