"""`turbovbi-lenet300-mnist`: Turbo-VBI vs the Bayesian and pruning peers on LeNet-300-100 / MNIST."""

from __future__ import annotations

from dataclasses import dataclass

from sparsenets.experiments.turbovbi.common import TurboStudyConfig
from sparsenets.experiments.turbovbi.study import StudySpec, register_study
from sparsenets.models.lenet import LeNet300100


@dataclass
class Config(TurboStudyConfig):
    """The spec's MLP schedule (20 dense epochs, 15 rounds × 2) and the p sweep {0.02, 0.3} on this net only;
    the shared fields are documented on `TurboStudyConfig`."""

    p_extra: tuple[float, ...] = (0.02, 0.3)


QUICK = {  # a smoke run: 2k images, one seed, a few epochs
    "seeds": 1,
    "peer_seeds": 1,
    "warmup_epochs": 2,
    "rounds": 2,
    "epochs_per_round": 1,
    "finetune_epochs": 1,
    "p_extra": (),
    "train_limit": 2048,
    "val_limit": 1000,
    "test_limit": 1000,
    "latency_repeat": 3,
}

SPEC = StudySpec(
    "mnist", LeNet300100, "LeNet-300-100 / MNIST", {"dense": 1.8, "svd_err": 1.92, "svd_comp": 68.0}
)

register_study(
    "turbovbi-lenet300-mnist",
    Config,
    SPEC,
    QUICK,
    "Turbo-VBI (mrf2d, chain) vs i.i.d. spike-and-slab, ARD, Sparse VD, BC-GHS, magnitude, group lasso on "
    "LeNet-300-100/MNIST at matched error: compression, neurons removed, regularity",
)
