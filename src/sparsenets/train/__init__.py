"""The one training loop, its callbacks, batch sources, checkpoints and DDP helpers."""

from sparsenets.train.batches import SampledBatches, TensorBatches, to_device
from sparsenets.train.callbacks import Callback, TrainState
from sparsenets.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from sparsenets.train.dist import DistInfo, default_device, init_distributed
from sparsenets.train.loop import Trainer, seed_everything
from sparsenets.train.losses import check_distill, distill_loss, teacher_logits

__all__ = [
    "Callback",
    "DistInfo",
    "SampledBatches",
    "TensorBatches",
    "TrainState",
    "Trainer",
    "check_distill",
    "default_device",
    "distill_loss",
    "init_distributed",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "teacher_logits",
    "to_device",
]
