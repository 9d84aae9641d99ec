"""`turbovbi-cnn-fmnist`: the Turbo-VBI demo's 4-conv CNN on Fashion-MNIST (the offline stand-in for CIFAR-10)."""

from __future__ import annotations

from dataclasses import dataclass

from sparsenets.experiments.turbovbi.common import CNN_QUICK, CNNStudyConfig
from sparsenets.experiments.turbovbi.study import StudySpec, register_study
from sparsenets.models.lenet import DemoCNN


@dataclass
class FMNISTStudyConfig(CNNStudyConfig):
    """`CNNStudyConfig` with the spec's Adam warm-up: the demo CNN has no batch norm, and the SGD warm-up
    (Nesterov, lr 0.1, the LeNet recipe) made its dense loss NaN within the first 128 steps."""

    warmup_optimizer: str = "adam"


SPEC = StudySpec("fashion-mnist", DemoCNN, "demo CNN / Fashion-MNIST (stand-in)", {})

register_study(
    "turbovbi-cnn-fmnist",
    FMNISTStudyConfig,
    SPEC,
    CNN_QUICK,
    "Turbo-VBI vs its peers on the demo's 4-conv CNN / Fashion-MNIST (stand-in for CIFAR-10): relative "
    "compression and regularity at matched error",
)
