"""DDP on CPU: two gloo processes train exactly like one process with the same global batch; torchrun end to end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from sparsenets.errors import SparsenetsError
from sparsenets.groups import coupled_layouts
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.prox import PROXES, topk_multipliers
from sparsenets.train import TensorBatches, Trainer, init_distributed, seed_everything

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(
    out: str, rank: int = 0, world: int = 1, port: int = 0, prox: bool = False, nan_at: int | None = None
) -> None:
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
        )
        os.environ["LOCAL_RANK"] = str(rank)
        init_distributed()
    seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(512, 10, generator=g), torch.randint(0, 4, (512,), generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if (
        prox
    ):  # WGSEF on the hidden neurons (each with its column of the next layer), exactly 8 of 32 at the end
        layout = coupled_layouts(model, x[:1])[0]
        opt = ProxOptimizer(
            opt, [ProxBlock(layout, 8, 0.05, PROXES["wgsef"])], topk_multipliers, warmup_steps=10
        )
    calls = []

    def loss_fn(m: torch.nn.Module, b: tuple) -> torch.Tensor:  # NaN once, on the last rank, at step `nan_at`
        calls.append(1)
        bad = nan_at is not None and rank == world - 1 and len(calls) == nan_at + 1
        return F.cross_entropy(m(b[0]), b[1]) * (float("nan") if bad else 1.0)

    trainer = Trainer(
        model,
        opt,
        TensorBatches(x, y, batch_size=64, seed=1),
        loss_fn,
        40 if nan_at is None else nan_at + 10,
        device="cpu",
        progress=False,
    )
    trainer.fit()
    if prox:
        opt.finalize()
    if rank == 0:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)
    if world > 1:
        torch_dist.destroy_process_group()


def _worker(rank: int, out: str, world: int, port: int, prox: bool = False) -> None:
    _train(out, rank, world, port, prox)


def _nan_worker(rank: int, out: str, world: int, port: int, nan_at: int) -> None:
    """Train with a NaN loss on the last rank only; record the error each rank raised."""
    try:
        _train(out, rank, world, port, nan_at=nan_at)
    except SparsenetsError as err:
        Path(f"{out}.rank{rank}").write_text(str(err))
        torch_dist.destroy_process_group()


def test_nan_loss_on_one_rank_stops_every_rank_with_the_same_clear_error(tmp_path) -> None:
    """The finite check reads the loss sum averaged over ranks: all stop at the same step, none is stranded."""
    out = str(tmp_path / "nan.pt")
    mp.spawn(_nan_worker, args=(out, 2, _free_port(), 63), nprocs=2, join=True)
    errors = [Path(f"{out}.rank{r}").read_text() for r in range(2)]
    assert errors[0] == errors[1] and "NaN or inf between steps 50 and 64" in errors[0]  # logged at 50


def test_two_processes_equal_one(tmp_path) -> None:
    single, double = str(tmp_path / "one.pt"), str(tmp_path / "two.pt")
    _train(single)
    mp.spawn(_worker, args=(double, 2, _free_port()), nprocs=2, join=True)
    a, b = torch.load(single), torch.load(double)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_proximal_training_under_ddp_equals_one_process_and_keeps_exactly_k(tmp_path) -> None:
    single, double = str(tmp_path / "one.pt"), str(tmp_path / "two.pt")
    _train(single, prox=True)
    mp.spawn(_worker, args=(double, 2, _free_port(), True), nprocs=2, join=True)
    a, b = torch.load(single), torch.load(double)
    kept = [(sd["0.weight"].norm(dim=1) > 0).nonzero().flatten().tolist() for sd in (a, b)]
    assert len(kept[0]) == 8 and kept[0] == kept[1]  # the same 8 neurons survive on both
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_torchrun_mlp_mnist_matches_single_process(tmp_path) -> None:
    torchrun = shutil.which("torchrun") or pytest.fail("torchrun is not on PATH (it ships with torch)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    args = ["-m", "sparsenets", "run", "mlp-mnist", "--quick"]
    subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            *args,
            "--out",
            str(tmp_path / "ddp"),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], check=True, env=env, timeout=600)
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    one = json.loads((tmp_path / "one" / "result.json").read_text())
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    assert one["metrics"]["test_accuracy"] > 0.95
    assert abs(ddp["metrics"]["test_accuracy"] - one["metrics"]["test_accuracy"]) < 0.01
