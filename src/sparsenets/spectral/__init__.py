"""Sparse Spectral Training (Zhao et al., 2024/2025) and its low-rank baselines (LoRA, ReLoRA*, GaLore).

SST on a model of your own (its nn.Linear layers named "fc1" and "fc2"; `x`, `y`, `loss_fn` your data and loss):

```python
import torch
from sparsenets.spectral import SSTConfig, SSTSchedule, sst_convert, sst_merge
cfg = SSTConfig(rank=4, targets=("fc1", "fc2"), period=50)           # r pairs per layer, resampled every 50 steps
sst_convert(model, cfg)                                               # nn.Linear -> SSTLinear, same outputs
opt, sst = torch.optim.Adam(model.parameters(), lr=1e-3), SSTSchedule(cfg, seed=0)
loss_fn(model(x), y).backward(); opt.step(); sst.step(model, opt)     # one step of your own loop
sst_merge(model)                                                      # back to plain nn.Linear, same outputs
```

LoRA is the same with `LoRAConfig`, `lora_convert`, `lora_merge` (and `ReLoRASchedule` for ReLoRA*); under
`sparsenets.train.Trainer` pass the schedule in `callbacks=[...]` instead of calling `step`. `prepare_method`
sets up any of full rank, SST, LoRA, ReLoRA* or GaLore (optimizer, LR schedule, callbacks) in one call.
"""

from sparsenets.spectral.base import FactoredLinear
from sparsenets.spectral.convert import SSTConfig, sst_convert, sst_layers, sst_merge
from sparsenets.spectral.galore import GaLoreAdamW
from sparsenets.spectral.layer import SSTLinear
from sparsenets.spectral.lowrank import LoRAConfig, LoRALinear, ReLoRASchedule, lora_convert, lora_merge
from sparsenets.spectral.methods import METHODS, MethodSetup, prepare_method
from sparsenets.spectral.sampling import sample_indices, sampling_probabilities
from sparsenets.spectral.schedule import SSTSchedule, StepSchedule, jagged_lr_lambda, reset_optimizer_state
from sparsenets.spectral.stats import (
    optimizer_state_numel,
    sst_state_formula,
    steady_costs,
    trainable_parameters,
    training_state_bytes,
)
from sparsenets.spectral.targets import select_linears
from sparsenets.spectral.trace import GradNormTrace, cost_summary

__all__ = [
    "METHODS",
    "FactoredLinear",
    "GaLoreAdamW",
    "GradNormTrace",
    "LoRAConfig",
    "LoRALinear",
    "MethodSetup",
    "ReLoRASchedule",
    "SSTConfig",
    "SSTLinear",
    "SSTSchedule",
    "StepSchedule",
    "cost_summary",
    "jagged_lr_lambda",
    "lora_convert",
    "lora_merge",
    "optimizer_state_numel",
    "prepare_method",
    "reset_optimizer_state",
    "sample_indices",
    "sampling_probabilities",
    "select_linears",
    "sst_convert",
    "sst_layers",
    "sst_merge",
    "sst_state_formula",
    "steady_costs",
    "trainable_parameters",
    "training_state_bytes",
]
