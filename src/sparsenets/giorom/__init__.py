"""GIOROM: a learned particle stepper on M ≪ N sampled particles plus a decoder to any point
(../shared/specs/giorom.md). The same `Stepper` is the full-order GNS baseline (n_mp=10 on all N particles).

With trajectories `pos` [n_traj, T, N, 2] in the box [0, 1]², `types` [N] and sampled ids `ids` [M]:

```python
import torch
from sparsenets import giorom
from sparsenets.train import Trainer
cfg = giorom.StepperConfig(giorom.statistics(pos), bounds=((0, 1), (0, 1)), radius=0.15, hidden=32)
model, batches = giorom.Stepper(cfg), giorom.WindowBatches(pos, types, ids, cfg, batch_size=2)
Trainer(model, torch.optim.Adam(model.parameters(), 1e-3), batches, giorom.acceleration_loss, 20).fit()
run = giorom.rollout(model, pos[0, :6][:, ids].transpose(0, 1), steps=10, types=types[ids])  # [10, M, 2]
dense = giorom.ShepardDecoder()(pos[0, 0, ids], run.positions[-1], pos[0, 0])            # all N at step 10
```

`run.median_ms()` splits a step into graph, processor and decoder time. The learned `KernelDecoder` (grid splat,
Shepard normalisation, residual MLP; set `DecoderConfig.scale=displacement_scale(pos)`) trains with the same
Trainer on `DecoderBatches` and `decoder_loss`, and plugs into `rollout(..., decoder=, reference=, queries=)`
to decode every step. Reported metrics (one-step MSE, rollout MSE, Chamfer, relative L2) are in `metrics`.
"""

from sparsenets.giorom.config import DecoderConfig, Statistics, StepperConfig
from sparsenets.giorom.decoder import KernelDecoder, ShepardDecoder
from sparsenets.giorom.features import (
    corrected_target,
    displacement_scale,
    integrate,
    random_walk_noise,
    statistics,
)
from sparsenets.giorom.gno import GNOBlock, grid_points
from sparsenets.giorom.graph import degrees, radius_graph, radius_pairs, require_neighbours
from sparsenets.giorom.losses import acceleration_loss, decoder_loss
from sparsenets.giorom.metrics import chamfer_distance, one_step_mse, per_frame_mse, relative_l2, rollout_mse
from sparsenets.giorom.rollout import Rollout, bind_decoder, rollout
from sparsenets.giorom.stepper import Stepper
from sparsenets.giorom.windows import DecoderBatches, WindowBatches

__all__ = [
    "DecoderBatches",
    "DecoderConfig",
    "GNOBlock",
    "KernelDecoder",
    "Rollout",
    "ShepardDecoder",
    "Statistics",
    "Stepper",
    "StepperConfig",
    "WindowBatches",
    "acceleration_loss",
    "bind_decoder",
    "chamfer_distance",
    "corrected_target",
    "decoder_loss",
    "degrees",
    "displacement_scale",
    "grid_points",
    "integrate",
    "one_step_mse",
    "per_frame_mse",
    "radius_graph",
    "radius_pairs",
    "random_walk_noise",
    "relative_l2",
    "require_neighbours",
    "rollout",
    "rollout_mse",
    "statistics",
]
