"""Bad input gets one clear line: too few particles for M, a radius that isolates particles, NaN positions,
queries outside the domain, inconsistent configs."""

from __future__ import annotations

import pytest
import torch

import sparsenets.giorom as giorom
from sparsenets.errors import ConfigError, SparsenetsError
from tests.giorom.synthetic import dataset
from tests.giorom.test_giorom_stepper import STATS

BOX = ((0.0, 1.0), (0.0, 1.0))


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and len(message) < 300
    return message


def test_a_data_set_too_small_for_m_is_refused() -> None:
    pos = dataset(n_traj=1, frames=10, n_side=4)  # 16 particles
    cfg = giorom.StepperConfig(STATS, BOX, radius=0.3)
    with pytest.raises(ConfigError) as err:
        giorom.WindowBatches(pos, torch.zeros(16, dtype=torch.long), torch.arange(32), cfg)
    assert "too few for 32" in one_line(err)
    with pytest.raises(ConfigError, match="frames"):
        giorom.WindowBatches(pos[:, :6], torch.zeros(16, dtype=torch.long), torch.arange(16), cfg)
    with pytest.raises(ConfigError, match="too few"):
        giorom.DecoderBatches(pos, torch.arange(20), n_query=8)
    with pytest.raises(ConfigError, match="repeat"):
        giorom.WindowBatches(pos, torch.zeros(16, dtype=torch.long), torch.tensor([1, 1, 2]), cfg)


def test_a_radius_that_isolates_particles_is_refused() -> None:
    pos = dataset(n_traj=1, frames=10, n_side=6)  # spacing 0.08
    cfg = giorom.StepperConfig(STATS, BOX, radius=0.05)
    with pytest.raises(ConfigError) as err:
        giorom.WindowBatches(pos, torch.zeros(36, dtype=torch.long), torch.arange(36), cfg)
    assert "without a neighbour" in one_line(err)


def test_nan_positions_are_refused_everywhere() -> None:
    pos = dataset(n_traj=1, frames=10, n_side=4)
    pos[0, 3, 5, 1] = float("nan")
    cfg = giorom.StepperConfig(STATS, BOX, radius=0.3)
    for call in (
        lambda: giorom.statistics(pos),
        lambda: giorom.WindowBatches(pos, torch.zeros(16, dtype=torch.long), torch.arange(16), cfg),
        lambda: giorom.DecoderBatches(pos, torch.arange(8), n_query=8),
        lambda: giorom.rollout(giorom.Stepper(cfg), pos[0, :6].transpose(0, 1), 2),
    ):
        with pytest.raises(ConfigError) as err:
            call()
        assert "NaN" in one_line(err)


def test_queries_outside_the_domain_and_bad_shapes_are_refused() -> None:
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=8))
    ref = torch.rand(10, 2)
    with pytest.raises(SparsenetsError) as err:
        dec(ref, ref, torch.tensor([[1.5, 0.5]]))
    assert "outside the decoder's reference box" in one_line(err)
    model = giorom.Stepper(giorom.StepperConfig(STATS, BOX, radius=0.3))
    with pytest.raises(ConfigError, match="x_hist"):
        giorom.rollout(model, torch.rand(10, 4, 2), 3)
    with pytest.raises(ConfigError, match="reference"):
        giorom.rollout(model, torch.rand(10, 6, 2), 3, decoder=dec)
    with pytest.raises(ConfigError, match="n_types"):
        giorom.rollout(model, torch.rand(10, 6, 2), 3, types=torch.full((10,), 12))


@pytest.mark.parametrize("kind", ["kernel", "shepard"])
def test_bound_decoders_refuse_points_of_the_wrong_shape(kind: str) -> None:
    """bind(reference, queries) and the bound call each refuse a wrong shape in one line, before any indexing."""
    dec = (
        giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=8))
        if kind == "kernel"
        else giorom.ShepardDecoder()
    )
    ref, queries = 0.2 + 0.6 * torch.rand(10, 2), 0.2 + 0.6 * torch.rand(30, 2)
    with pytest.raises(SparsenetsError) as err:
        dec.bind(ref, queries[:, :1])
    assert "query points" in one_line(err)
    with pytest.raises(SparsenetsError) as err:
        dec.bind(ref[:, None], queries)
    assert "sparse reference points" in one_line(err)
    bound = dec.bind(ref, queries)
    with pytest.raises(SparsenetsError) as err:
        bound(ref[:7])
    assert "sparse positions must be [10, 2], got (7, 2)" in one_line(err)
    assert bound(ref).shape == (30, 2)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(radius=0.0), "radius"),
        (dict(radius=float("nan")), "radius"),
        (dict(bounds=((0.0, 1.0),)), "bounds"),
        (dict(bounds=((1.0, 0.0), (0.0, 1.0))), "low < high"),
        (dict(latent_grid=1), "latent_grid"),
        (dict(hidden=0), "hidden"),
        (dict(stats=giorom.Statistics((0.0,), (1.0,), (0.0,), (1.0,))), "2 finite floats"),
        (dict(stats=giorom.Statistics((0.0, 0.0), (0.0, 1.0), (0.0, 0.0), (1.0, 1.0))), "> 0"),
    ],
)
def test_inconsistent_stepper_configs_are_refused(kw, match) -> None:
    base = dict(stats=STATS, bounds=BOX, radius=0.1)
    with pytest.raises(ConfigError, match=match):
        giorom.StepperConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "kw", [dict(grid=1), dict(smoothing=-1.0), dict(scale=0.0), dict(activation="tanh"), dict(features=0)]
)
def test_inconsistent_decoder_configs_are_refused(kw) -> None:
    with pytest.raises(ConfigError):
        giorom.DecoderConfig(bounds=BOX, **kw)
