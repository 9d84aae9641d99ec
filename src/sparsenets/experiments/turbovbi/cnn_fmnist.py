"""`turbovbi-cnn-fmnist`: the Turbo-VBI demo's 4-conv CNN on Fashion-MNIST (the offline stand-in for CIFAR-10)."""

from __future__ import annotations

from sparsenets.experiments.turbovbi.common import CNN_QUICK, CNNStudyConfig
from sparsenets.experiments.turbovbi.study import StudySpec, register_study
from sparsenets.models.lenet import DemoCNN

SPEC = StudySpec("fashion-mnist", DemoCNN, "demo CNN / Fashion-MNIST (stand-in)", {})

register_study(
    "turbovbi-cnn-fmnist",
    CNNStudyConfig,
    SPEC,
    CNN_QUICK,
    "Turbo-VBI vs its peers on the demo's 4-conv CNN / Fashion-MNIST (stand-in for CIFAR-10): relative "
    "compression and regularity at matched error",
)
