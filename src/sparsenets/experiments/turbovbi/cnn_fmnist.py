"""`turbovbi-cnn-fmnist`: the Turbo-VBI demo's 4-conv CNN on Fashion-MNIST (the offline stand-in for CIFAR-10)."""

from __future__ import annotations

from dataclasses import dataclass

from sparsenets.experiments.turbovbi.common import TurboStudyConfig
from sparsenets.experiments.turbovbi.study import StudySpec, register_study
from sparsenets.models.lenet import DemoCNN


@dataclass
class Config(TurboStudyConfig):
    """The spec's CNN schedule (10 dense epochs, 10 rounds × 1); peers on one seed; the shared fields are
    documented on `TurboStudyConfig`. A stand-in: relative criteria only, no paper or peer number applies."""

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

SPEC = StudySpec("fashion-mnist", DemoCNN, "demo CNN / Fashion-MNIST (stand-in)", {})

register_study(
    "turbovbi-cnn-fmnist",
    Config,
    SPEC,
    QUICK,
    "Turbo-VBI vs its peers on the demo's 4-conv CNN / Fashion-MNIST (stand-in for CIFAR-10): relative "
    "compression and regularity at matched error",
)
