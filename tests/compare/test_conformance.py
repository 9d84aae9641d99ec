"""The conformance matrix: every registered compression adapter on a tiny CNN keeps exactly the budgeted groups,
its compacted model computes what the masked one did, and its record is complete."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from sparsenets.compare import CompressionRecord, CompressionTask, adapters, compress, train_dense
from sparsenets.errors import ConfigError


class TinyCNN(nn.Sequential):
    """conv 8 → BN → pool → conv 12 → pool → fc 16 → fc 3 on 1×12×12 inputs."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(12 * 9, 16), nn.ReLU(), nn.Linear(16, 3),
        )  # fmt: skip


@pytest.fixture(scope="module")
def task_and_dense() -> tuple[CompressionTask, tuple]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 1, 12, 12, generator=g)
    y = (x[:, 0, :6].mean((1, 2)) > 0).long() + (x[:, 0, 6:].mean((1, 2)) > 0).long()
    task = CompressionTask(model_name="tiny", dataset="synthetic", make_model=TinyCNN, train=(x[:128], y[:128]),
                           test=(x[128:], y[128:]), epochs=1, sparse_epochs=1, finetune_epochs=1, batch_size=32,
                           latency_repeat=2)  # fmt: skip
    return task, train_dense(task, seed=0)


@pytest.mark.parametrize("method", sorted(adapters()))
def test_every_adapter_keeps_the_budget_compacts_exactly_and_records_everything(
    method, task_and_dense
) -> None:
    task, dense = task_and_dense
    record = compress(method, task, keep=0.5, seed=0, dense=dense)
    record.check()  # finite, positive sizes and latencies, kept == budgeted
    if record.structured:
        assert record.kept == record.budgeted == [4, 6, 8]  # half of (8, 12, 16), per coupled layer
        assert record.max_abs_diff <= 1e-4  # the compacted model computes what the masked one did
        assert record.params < record.params_dense and record.flops < record.flops_dense
    else:
        total = sum(p.numel() for n, p in TinyCNN().named_parameters() if p.dim() >= 2)
        assert record.kept == record.budgeted == [round(0.25 * total)]  # keep² of the weights
        assert record.flops == record.flops_dense  # no structured claim
    data = record.to_dict()
    assert {f.name for f in dataclasses.fields(CompressionRecord)} <= data.keys()
    assert CompressionRecord.from_dict(data) == record
    assert 0.0 <= record.accuracy <= 100.0 and record.method == method


def test_bad_method_and_incomplete_record_get_one_clear_error(task_and_dense) -> None:
    task, dense = task_and_dense
    with pytest.raises(ConfigError, match="unknown compression method 'magnitud'"):
        compress("magnitud", task, keep=0.5, seed=0, dense=dense)
    for bad in (1.5, 0.0, 2, True):
        with pytest.raises(ConfigError, match="keep must be a ratio in"):
            compress("wgsef", task, keep=bad, seed=0, dense=dense)
    from sparsenets.errors import SparsenetsError

    with pytest.raises(SparsenetsError, match="record lacks"):
        CompressionRecord.from_dict({"method": "wgsef"})


def test_adding_an_adapter_needs_only_its_own_registration(task_and_dense) -> None:
    """A new adapter defined anywhere (here: keep the first k groups) joins the protocol by registering."""
    from sparsenets.optim import ProxOptimizer
    from sparsenets.pruning import ADAPTERS, Adapter, Sparsified, magnitude_blocks, register_adapter

    @register_adapter
    class FirstK(Adapter):
        name, label = "first_k_test", "first k"

        def sparsify(self, ctx):
            blocks = magnitude_blocks(ctx.dense, ctx.example, ctx.keep)
            for b in blocks:
                c = torch.zeros(b.layout.m)
                c[: b.k] = 1
                b.layout.scale_(c)
            return Sparsified(ctx.dense, optimizer=ProxOptimizer(ctx.sgd(ctx.dense), blocks))

    try:
        task, dense = task_and_dense
        assert compress("first_k_test", task, keep=0.5, seed=0, dense=dense).kept == [4, 6, 8]
    finally:
        ADAPTERS.pop("first_k_test")


class SwappedHalves(nn.Module):
    """A conv whose output halves are swapped by chunk + cat: no group layout fits it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 4, 1), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.a(x).chunk(2, 1)
        return self.head(self.b(torch.cat([v, u], 1)).mean((2, 3)))


@pytest.mark.parametrize("method", ["wgsef", "l1_filter"])
def test_a_model_no_adapter_can_compact_is_one_clear_error(method: str, task_and_dense) -> None:
    from sparsenets.errors import SparsenetsError

    task, _ = task_and_dense
    bad = dataclasses.replace(task, model_name="swapped", make_model=SwappedHalves)
    with pytest.raises(SparsenetsError, match=r"channels of 'a'|coupled channel groups"):
        compress(method, bad, keep=0.5, seed=0, dense=train_dense(bad, seed=0))
