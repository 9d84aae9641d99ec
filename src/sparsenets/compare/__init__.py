"""The comparison: every compression method on the same models, one record, one protocol.

    task = CompressionTask(model_name="lenet5", dataset="mnist", make_model=LeNet5, train=(x, y), test=(xt, yt))
    dense = train_dense(task, seed=0)                              # once per model and seed
    for method in adapters():                                      # every registered adapter
        record = compress(method, task, keep=0.5, seed=0, dense=dense)   # a CompressionRecord

Adapters register themselves from their packages (`sparsenets.pruning.adapters` for the baselines, each method's
`adapter` module); `adapters()` imports them all, so adding one edits nothing here.
"""

from __future__ import annotations

from sparsenets.compare.budget import architecture_at_keep, flops_at_keep, keep_for_flops
from sparsenets.compare.discover import adapters
from sparsenets.compare.protocol import budget_counts, compress, measure_budget, train_dense
from sparsenets.compare.record import CompressionRecord
from sparsenets.compare.task import CompressionTask, TrainRecipe

__all__ = [
    "CompressionRecord",
    "CompressionTask",
    "TrainRecipe",
    "adapters",
    "architecture_at_keep",
    "budget_counts",
    "compress",
    "flops_at_keep",
    "keep_for_flops",
    "measure_budget",
    "train_dense",
]
