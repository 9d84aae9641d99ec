"""The spec's last sanity test: a teacher with block-clustered support; Turbo-VBI (2-D MRF) finds the blocks,
i.i.d. spike-and-slab VBI scatters (measured on seeds 0-2: runs per column 3.5/4.5/6.9 vs 10.1/8.9/12.8,
support errors 25/35/54 vs 94/85/130 of 512, equal accuracy)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from sparsenets.grids import support_grid
from sparsenets.structure import runs_per_column
from sparsenets.turbovbi import TurboVBI, TurboVBIConfig, convert, prune


def _fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, vbi=None, seed=0
) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // 100):
            idx = perm[i * 100 : (i + 1) * 100]
            loss = F.cross_entropy(model(x[idx]), y[idx]) + (vbi.kl_loss() if vbi else 0.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if vbi:
                vbi.step()


def test_turbo_prior_finds_clustered_support_that_iid_scatters() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    teacher = torch.zeros(8, 64)
    for j in range(8):  # outputs 2i, 2i+1 read inputs 16i..16i+15: 16×2 blocks of the support grid
        block = torch.randn(16, generator=g).sign() * (0.5 + torch.rand(16, generator=g))
        teacher[j, (j // 2) * 16 : (j // 2) * 16 + 16] = block
    x = torch.randn(2000, 64, generator=g)
    y = (x @ teacher.T).argmax(1)
    dense = nn.Sequential(nn.Linear(64, 8))
    _fit(dense, x, y, epochs=15, lr=1e-2)
    truth = support_grid(teacher) != 0
    found = {}
    for support in ("mrf2d", "iid"):
        config = TurboVBIConfig(support=support, rounds=8, epochs_per_round=2, p01=0.05, p10=0.05)
        model = convert(copy.deepcopy(dense), config)
        vbi = TurboVBI(model, config, n_train=2000, steps_per_epoch=20)
        _fit(model, x, y, epochs=vbi.config.rounds * 2, lr=3e-3, vbi=vbi, seed=1)
        assert vbi.done
        plain, _ = prune(model, config)
        grid = support_grid(plain[0].weight.detach())
        with torch.no_grad():
            acc = float((plain.eval()(x).argmax(1) == y).float().mean())
        found[support] = (runs_per_column(grid, nonempty_only=True), int(((grid != 0) != truth).sum()), acc)
    turbo, iid = found["mrf2d"], found["iid"]
    assert turbo[0] < 0.6 * iid[0]  # clustered: fewer runs of non-zeros down each neuron's column
    assert turbo[1] < 0.6 * iid[1]  # and fewer support errors against the teacher
    assert turbo[2] > iid[2] - 0.02 and turbo[2] > 0.9  # at the same accuracy
