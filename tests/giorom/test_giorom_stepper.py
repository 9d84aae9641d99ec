"""Spec sanity tests 4 and 8: permutation equivariance, translation invariance away from walls, GNO coverage."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.giorom import GNOBlock, Statistics, Stepper, StepperConfig, radius_graph

torch.set_num_threads(1)

STATS = Statistics(vel_mean=(1e-4, -2e-4), vel_std=(3e-3, 4e-3), acc_mean=(0.0, -1e-4), acc_std=(2e-4, 3e-4))


def config(**kw) -> StepperConfig:
    base = dict(
        stats=STATS, bounds=((0.0, 1.0), (0.0, 1.0)), radius=0.12, hidden=24, n_mp=2, type_embedding=4
    )
    return StepperConfig(**{**base, **kw})


def window(m: int, seed: int, lo: float = 0.3, hi: float = 0.7) -> torch.Tensor:
    """[m, 6, 2] random positions in [lo, hi]² moving with random velocities."""
    g = torch.Generator().manual_seed(seed)
    start = lo + (hi - lo) * torch.rand(m, 1, 2, generator=g)
    vel = 3e-3 * torch.randn(m, 1, 2, generator=g) + 1e-3 * torch.randn(m, 6, 2, generator=g).cumsum(1)
    return start + vel.cumsum(1)


@settings(max_examples=8, deadline=None)
@given(m=st.integers(2, 50), seed=st.integers(0, 999), grid=st.sampled_from([0, 6]), acc=st.booleans())
def test_stepper_is_permutation_equivariant(m, seed, grid, acc) -> None:
    torch.manual_seed(seed)
    model = Stepper(config(latent_grid=grid, acc_history=acc)).double()
    pos = window(m, seed).double()
    types = torch.randint(0, 9, (m,), generator=torch.Generator().manual_seed(seed))
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(seed + 1))
    out = model({"pos": pos, "types": types})["acc"]
    out_perm = model({"pos": pos[perm], "types": types[perm]})["acc"]
    assert torch.allclose(out_perm, out[perm], atol=1e-12)
    assert out.abs().max() > 0


@pytest.mark.parametrize("acc", [False, True])
def test_translation_away_from_walls_keeps_accelerations(acc: bool) -> None:
    torch.manual_seed(0)
    model = Stepper(config(acc_history=acc)).double()
    # every particle farther than R from every wall, before and after the shift
    pos = window(40, 3, lo=0.3, hi=0.5).double()
    types = torch.zeros(40, dtype=torch.long)
    out = model({"pos": pos, "types": types})["acc"]
    moved = model({"pos": pos + torch.tensor([0.17, 0.11], dtype=torch.float64), "types": types})["acc"]
    assert torch.allclose(out, moved, atol=1e-10)
    near_wall = model({"pos": pos - torch.tensor([0.25, 0.0], dtype=torch.float64), "types": types})["acc"]
    assert not torch.allclose(out, near_wall, atol=1e-6)  # the walls are felt once within R


def test_given_graph_equals_the_built_one() -> None:
    torch.manual_seed(0)
    model = Stepper(config())
    pos = window(30, 1)
    types = torch.zeros(30, dtype=torch.long)
    graph = radius_graph(pos[:, -1], 0.12)
    a = model({"pos": pos, "types": types})["acc"]
    b = model({"pos": pos, "types": types, "graph": graph})["acc"]
    assert torch.equal(a, b)
    perm = torch.randperm(graph.shape[1])  # edge order must not matter beyond float rounding
    c = model({"pos": pos, "types": types, "graph": graph[:, perm]})["acc"]
    assert torch.allclose(a, c, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 12), m=st.integers(1, 300), seed=st.integers(0, 999), d=st.sampled_from([2, 3]))
def test_every_particle_and_occupied_cell_has_a_gno_neighbour(n, m, seed, d) -> None:
    bounds = ((0.05, 0.95),) * d
    block = GNOBlock(config(bounds=bounds, latent_grid=n, stats=Statistics(*([(0.0,) * d, (1.0,) * d] * 2))))
    pos = 0.05 + 0.9 * torch.rand(m, d, generator=torch.Generator().manual_seed(seed))
    corners = torch.tensor([[0.05] * d, [0.95] * d])  # the farthest a particle can be from the grid's centre
    assert block.covered(torch.cat([pos, corners])) == (True, True)
    assert block.radius >= math.sqrt(d) / 2 * (0.9 / (n - 1))


def test_gno_radius_below_half_a_cell_diagonal_is_refused() -> None:
    with pytest.raises(ConfigError, match="r_gno"):
        config(latent_grid=8, r_gno=0.05)  # half the cell diagonal of an 8-point grid on [0, 1]² is 0.101
    config(latent_grid=8, r_gno=0.11)


def test_particle_outside_the_latent_grid_is_an_error() -> None:
    model = Stepper(config(latent_grid=6))
    pos = window(10, 0)
    pos[0, :, 0] += 2.0  # left the box
    with pytest.raises(SparsenetsError, match="no latent-grid neighbour"):
        model({"pos": pos, "types": torch.zeros(10, dtype=torch.long)})


def test_bad_sample_shapes_and_types_are_refused() -> None:
    model = Stepper(config())
    with pytest.raises(ConfigError, match="pos"):
        model.check({"pos": torch.zeros(5, 4, 2), "types": torch.zeros(5, dtype=torch.long)})
    with pytest.raises(ConfigError, match="n_types"):
        model.check({"pos": torch.zeros(5, 6, 2), "types": torch.full((5,), 9)})


def test_3d_stepper_with_a_latent_grid_rolls_out_and_stays_equivariant() -> None:
    torch.manual_seed(0)
    stats = Statistics((0.0,) * 3, (3e-3,) * 3, (0.0,) * 3, (2e-4,) * 3)
    model = Stepper(config(stats=stats, bounds=((0.0, 1.0),) * 3, radius=0.3, latent_grid=5)).double()
    g = torch.Generator().manual_seed(0)
    pos = (
        0.3 + 0.4 * torch.rand(30, 1, 3, generator=g) + 1e-3 * torch.randn(30, 6, 3, generator=g).cumsum(1)
    ).double()
    types = torch.zeros(30, dtype=torch.long)
    perm = torch.randperm(30, generator=g)
    out = model({"pos": pos, "types": types})["acc"]
    assert out.shape == (30, 3)
    assert torch.allclose(model({"pos": pos[perm], "types": types})["acc"], out[perm], atol=1e-12)
    from sparsenets.giorom import rollout

    run = rollout(model, pos, 3)
    assert run.positions.shape == (3, 30, 3) and torch.isfinite(run.positions).all()


def test_edge_blocks_give_the_same_outputs_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    import sparsenets.giorom.layers as layers

    torch.manual_seed(0)
    model = Stepper(config()).double()
    sample = {"pos": window(40, 5).double(), "types": torch.zeros(40, dtype=torch.long)}

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        out = model(sample)["acc"]
        (out**2).sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    whole, grads = run()
    monkeypatch.setattr(layers, "EDGE_BLOCK", 7)  # many blocks, the last one partial
    blocked, grads_blocked = run()
    assert torch.allclose(whole, blocked, atol=1e-12)
    assert len(grads) == len(grads_blocked)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(grads, grads_blocked))
