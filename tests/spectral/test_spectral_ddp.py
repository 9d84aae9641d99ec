"""Two CPU processes (gloo) train an SST model under DDP: sampling and re-SVDs must agree on every rank."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from sparsenets.models.char_transformer import CharTransformer
from sparsenets.spectral import SSTConfig, SSTSchedule, sst_convert
from sparsenets.train import Trainer
from tests.spectral.spectral_helpers import next_token_loss, token_batches

CFG = SSTConfig(rank=2, period=3, iterations_per_round=2, warmup=1)


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0"
    )
    torch.set_num_threads(1)
    torch_dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(
            100 + rank
        )  # ranks start from different weights and global RNG: DDP and SST must align them
        model = sst_convert(CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8), CFG)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        sched = SSTSchedule(CFG, seed=5)
        trainer = Trainer(
            model, opt, token_batches(), next_token_loss, 13, callbacks=[sched], progress=False, device="cpu"
        )
        trainer.fit()
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
        torch.save({"resvds": sched.resvds, "resamples": sched.resamples}, Path(out) / f"count{rank}.pt")
    finally:
        torch_dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_sst_ranks_agree(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert torch.load(tmp_path / "count0.pt") == {"resvds": 2, "resamples": 5}
    actives = [v for k, v in a.items() if k.endswith("active")]
    assert any(
        not torch.equal(t, torch.arange(2)) for t in actives
    )  # the draws really moved off the top-r start


def test_sampling_ignores_the_global_rng() -> None:
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(0)
        model = sst_convert(CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8), CFG)
        torch.manual_seed(global_seed)
        draws.append(SSTSchedule(CFG, seed=5).resample(model, None, iteration=7))
    assert all(torch.equal(x, y) for x, y in zip(*draws))
