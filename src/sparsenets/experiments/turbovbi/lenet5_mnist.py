"""`turbovbi-lenet5-mnist`: Turbo-VBI vs the Bayesian and pruning peers on LeNet-5-Caffe / MNIST."""

from __future__ import annotations

from sparsenets.experiments.turbovbi.common import CNN_QUICK, CNNStudyConfig
from sparsenets.experiments.turbovbi.study import StudySpec, register_study
from sparsenets.models.cnn import LeNet5

SPEC = StudySpec("mnist", LeNet5, "LeNet-5-Caffe / MNIST", {"dense": 0.9, "svd_err": 0.75, "svd_comp": 280.0},
                 latency=True)  # fmt: skip

register_study(
    "turbovbi-lenet5-mnist",
    CNNStudyConfig,
    SPEC,
    CNN_QUICK,
    "Turbo-VBI vs i.i.d., ARD, Sparse VD, BC-GHS, magnitude, group lasso on LeNet-5-Caffe/MNIST at matched "
    "error: compression, filters removed, regularity, batch-64 CPU speedup after compaction",
)
