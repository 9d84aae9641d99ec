"""The regularity metrics (`sparsenets.structure`) against brute-force loops over the grid cells."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsenets.compact import compact
from sparsenets.errors import ConfigError
from sparsenets.grids import support_grid
from sparsenets.models.lenet import DemoCNN, LeNet300100, pooled_side
from sparsenets.structure import (
    block_density,
    compression,
    drop_dead_units_,
    nonzero_runs,
    runs_per_column,
    structure_report,
    units_left,
)


def _grids(max_side: int = 11) -> st.SearchStrategy[torch.Tensor]:
    dims = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    return dims.flatmap(
        lambda rc: st.lists(st.booleans(), min_size=rc[0] * rc[1], max_size=rc[0] * rc[1]).map(
            lambda bits: torch.tensor(bits, dtype=torch.float32).reshape(rc)
        )
    )


def _runs_loop(g: torch.Tensor) -> list[int]:
    out = []
    for j in range(g.shape[1]):
        runs, prev = 0, False
        for i in range(g.shape[0]):
            cur = bool(g[i, j] != 0)
            runs += cur and not prev
            prev = cur
        out.append(runs)
    return out


def _density_loop(g: torch.Tensor, tile: int) -> float:
    nnz = cells = 0
    for i0 in range(0, g.shape[0], tile):
        for j0 in range(0, g.shape[1], tile):
            block = g[i0 : i0 + tile, j0 : j0 + tile]
            if bool((block != 0).any()):
                nnz, cells = nnz + int((block != 0).sum()), cells + block.numel()
    return nnz / cells if cells else 0.0


@settings(max_examples=60, deadline=None)
@given(_grids())
def test_runs_match_a_loop(g: torch.Tensor) -> None:
    loop = _runs_loop(g)
    assert nonzero_runs(g).tolist() == loop
    assert runs_per_column(g) == pytest.approx(sum(loop) / len(loop))
    nonempty = [r for r in loop if r]
    assert runs_per_column(g, nonempty_only=True) == pytest.approx(
        sum(nonempty) / len(nonempty) if nonempty else 0.0
    )


@settings(max_examples=60, deadline=None)
@given(_grids(13), st.integers(1, 5))
def test_block_density_matches_a_loop(g: torch.Tensor, tile: int) -> None:
    assert block_density(g, tile) == pytest.approx(_density_loop(g, tile))


def test_metrics_tell_clustered_from_scattered_support() -> None:
    """Same nnz: one 8×4 block gives 1 run per touched column and density 1; a checkerboard scatters."""
    block = torch.zeros(16, 16)
    block[4:12, 0:4] = 1.0
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 == 0).float()
    checker[:, 4:] = 0.0  # 32 non-zeros in 4 columns, like the block
    assert int(block.sum()) == int(checker.sum()) == 32
    assert runs_per_column(block, nonempty_only=True) == 1.0 and block_density(block) == 1.0
    assert runs_per_column(checker, nonempty_only=True) == 8.0 and block_density(checker) == 0.5
    assert runs_per_column(block) == 4 / 16  # dead columns count 0 runs


def test_compression_and_empty_cases() -> None:
    w = torch.zeros(10, 10)
    w[0, :5] = 1.0
    assert compression([w, torch.ones(5)]) == pytest.approx(105 / 10)
    assert math.isinf(compression([torch.zeros(3)]))
    assert block_density(torch.zeros(4, 4)) == 0.0 and runs_per_column(torch.zeros(3, 0)) == 0.0
    with pytest.raises(ConfigError, match="2-D"):
        runs_per_column(torch.zeros(3))
    with pytest.raises(ConfigError, match="tile"):
        block_density(torch.ones(3, 3), tile=0)


def test_units_left_counts_what_compaction_removes() -> None:
    """A unit units_left calls dead changes no output: zeroing the rest of its weights keeps the outputs, and
    the compacted copy then has exactly the counted widths."""
    torch.manual_seed(0)
    model = LeNet300100(hidden=(12, 8))
    lin = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        lin[0].weight[3], lin[0].bias[3] = 0.0, 0.0  # hidden-1 neuron 3: no input, so ReLU(0) = 0 out
        lin[1].weight[:, 5] = 0.0  # hidden-1 neuron 5: no output
        lin[1].weight[2], lin[1].bias[2] = 0.0, 0.0  # hidden-2 neuron 2: no input
        lin[0].weight[:, :100] = 0.0  # 100 dead pixels
    counts = units_left([m.weight for m in lin])
    assert counts == [684, 10, 7, 10]
    x = torch.rand(5, 1, 28, 28)
    before = model(x)
    with torch.no_grad():  # the rest of each dead unit's group
        lin[1].weight[:, 3] = 0.0
        lin[0].weight[5], lin[0].bias[5] = 0.0, 0.0
        lin[2].weight[:, 2] = 0.0
    torch.testing.assert_close(model(x), before)
    small = compact(model, torch.zeros(1, 1, 28, 28))
    widths = [m.out_features for m in small.modules() if isinstance(m, nn.Linear)]
    assert widths == counts[1:]


def test_units_left_maps_filters_through_flatten() -> None:
    conv = torch.ones(4, 1, 3, 3)
    fc = torch.ones(5, 4 * 9)
    fc[:, 9:18] = 0.0  # filter 1 feeds nothing
    conv[3] = 0.0  # filter 3 gets nothing
    assert units_left([conv, fc]) == [1, 2, 5]
    with pytest.raises(ConfigError, match="chain"):
        units_left([torch.ones(4, 3), torch.ones(2, 5)])


def test_structure_report_on_the_demo_cnn() -> None:
    torch.manual_seed(0)
    model = DemoCNN()
    with torch.no_grad():
        model[0].weight[2:] = 0.0  # 4 of 6 first-layer filters dead
    rep = structure_report(model)
    assert [lay["shape"] for lay in rep["layers"]][:2] == [[6, 1, 7, 7], [16, 6, 5, 5]]
    assert rep["units"][:2] == [1, 2]
    assert rep["layers"][0]["runs_per_column"] == pytest.approx(2 * 7 / 42)  # 14 live tap columns, 1 run each
    grid = support_grid(model[0].weight.detach())
    assert rep["layers"][0]["block_density"] == pytest.approx(_density_loop(grid, 4))
    total = sum(p.numel() for p in (m.weight for m in model if isinstance(m, nn.Conv2d | nn.Linear)))
    assert rep["compression"] == pytest.approx(total / (total - 4 * 49))


def test_demo_cnn_flattens_to_256() -> None:
    """28 → 13 → 6 → 2 through three 3×3/2 VALID pools, so fc input 2·2·64 = 256 (32×32 gives the demo's 576)."""
    assert pooled_side(28, 3) == 2 and pooled_side(32, 3) * pooled_side(32, 3) * 64 == 576
    model = DemoCNN()
    fcs = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in fcs] == [(256, 120), (120, 84), (84, 10)]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match="too small"):
        DemoCNN(side=8)


def test_drop_dead_units_makes_them_compactable() -> None:
    """Units with no input or no output lose all their weights; dropping a no-output unit changes nothing, the
    compacted copy has exactly units_left's widths, and a second call drops nothing."""
    torch.manual_seed(1)
    model = DemoCNN()
    convs = [m for m in model if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        convs[1].weight[:, 2] = 0.0  # conv-1 filter 2: nobody reads it (exact)
        convs[4].weight[:, 4 * 7 : 4 * 8] = 0.0  # conv-4 filter 7: its 4 flattened inputs unread by fc 1
    x = torch.rand(3, 1, 28, 28)
    before = model(x)
    assert drop_dead_units_(convs) == 2
    torch.testing.assert_close(model(x), before)
    assert drop_dead_units_(convs) == 0
    assert float(convs[0].weight[2].detach().abs().sum() + convs[0].bias[2].detach().abs()) == 0.0
    counts = units_left([m.weight for m in convs])
    assert counts[1] == 5 and counts[4] == 63
    small = compact(model, torch.zeros(1, 1, 28, 28))
    widths = [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features for m in small if
              isinstance(m, nn.Conv2d | nn.Linear)]  # fmt: skip
    assert widths == counts[1:]
    with torch.no_grad():
        convs[2].weight[5] = 0.0  # conv-3 filter 5: no input, output was act(bias): dropped with its bias
    assert drop_dead_units_(convs) == 1 and float(convs[3].weight[:, 5].detach().abs().sum()) == 0.0
