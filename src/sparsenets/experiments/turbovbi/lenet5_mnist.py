"""`turbovbi-lenet5-mnist`: Turbo-VBI vs the Bayesian and pruning peers on LeNet-5-Caffe / MNIST."""

from __future__ import annotations

from dataclasses import dataclass

from sparsenets.experiments.turbovbi.common import TurboStudyConfig
from sparsenets.experiments.turbovbi.study import StudySpec, register_study
from sparsenets.models.cnn import LeNet5


@dataclass
class Config(TurboStudyConfig):
    """The spec's CNN schedule (10 dense epochs, 10 rounds × 1); peers on one seed (3 for Turbo-VBI and
    i.i.d.); the shared fields are documented on `TurboStudyConfig`."""

    warmup_epochs: int = 10
    rounds: int = 10
    epochs_per_round: int = 1
    finetune_epochs: int = 1
    peer_seeds: int = 1


QUICK = {  # a smoke run: 1k images, one seed, one epoch per phase
    "seeds": 1,
    "peer_seeds": 1,
    "warmup_epochs": 1,
    "rounds": 2,
    "epochs_per_round": 1,
    "finetune_epochs": 1,
    "train_limit": 1024,
    "val_limit": 500,
    "test_limit": 500,
    "latency_repeat": 3,
}

SPEC = StudySpec("mnist", LeNet5, "LeNet-5-Caffe / MNIST", {"dense": 0.9, "svd_err": 0.75, "svd_comp": 280.0},
                 latency=True)  # fmt: skip

register_study(
    "turbovbi-lenet5-mnist",
    Config,
    SPEC,
    QUICK,
    "Turbo-VBI vs i.i.d., ARD, Sparse VD, BC-GHS, magnitude, group lasso on LeNet-5-Caffe/MNIST at matched "
    "error: compression, filters removed, regularity, batch-64 CPU speedup after compaction",
)
