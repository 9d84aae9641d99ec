"""Sparse Spectral Training (Zhao et al., 2024/2025) and its low-rank baselines (LoRA, ReLoRA*, GaLore).

```python
from sparsenets.spectral import SSTConfig, SSTSchedule, convert, merge
cfg = SSTConfig(rank=8, targets=("q", "k", "v", "o", "fc1", "fc2"), period=50, warmup=5)
convert(model, cfg)                                    # nn.Linear -> SSTLinear, same function
Trainer(model, opt, batches, loss_fn, steps, callbacks=[SSTSchedule(cfg, seed=0)]).fit()
merge(model)                                           # back to plain nn.Linear
```
"""

from sparsenets.spectral.convert import SSTConfig, convert, merge, sst_layers
from sparsenets.spectral.galore import GaLoreAdamW
from sparsenets.spectral.layer import SSTLinear
from sparsenets.spectral.lowrank import LoRAConfig, LoRALinear, ReLoRASchedule, convert_lora, merge_lora
from sparsenets.spectral.sampling import sample_indices, sampling_probabilities
from sparsenets.spectral.schedule import SSTSchedule, jagged_lr_lambda, reset_optimizer_state
from sparsenets.spectral.stats import optimizer_state_numel, sst_state_formula, trainable_parameters
from sparsenets.spectral.targets import select_linears

__all__ = [
    "GaLoreAdamW",
    "LoRAConfig",
    "LoRALinear",
    "ReLoRASchedule",
    "SSTConfig",
    "SSTLinear",
    "SSTSchedule",
    "convert",
    "convert_lora",
    "jagged_lr_lambda",
    "merge",
    "merge_lora",
    "optimizer_state_numel",
    "reset_optimizer_state",
    "sample_indices",
    "sampling_probabilities",
    "select_linears",
    "sst_layers",
    "sst_state_formula",
    "trainable_parameters",
]
