"""Spec sanity test 5 (overfit one trajectory with the shared Trainer), the docstring example, batches, rollout."""

from __future__ import annotations

import pytest
import torch

import sparsenets.giorom as giorom
from sparsenets.errors import ConfigError
from sparsenets.train import Trainer
from tests.giorom.synthetic import dataset, rotating_block, spacing

torch.set_num_threads(1)


def test_docstring_example_trains_rolls_out_and_decodes() -> None:
    code = giorom.__doc__.split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) == 3 + 5  # three imports, then the five lines of the example
    torch.manual_seed(0)
    pos = dataset(n_traj=2, frames=16, n_side=6)
    scope = {"pos": pos, "types": torch.zeros(36, dtype=torch.long), "ids": torch.arange(0, 36, 2)}
    exec(code, scope)
    run, dense = scope["run"], scope["dense"]
    assert run.positions.shape == (10, 18, 2) and dense.shape == (36, 2)
    assert torch.isfinite(run.positions).all() and torch.isfinite(dense).all()
    assert set(run.median_ms()) == {"graph", "processor", "step"}


def test_one_trajectory_is_overfit_and_its_rollout_stays_bounded() -> None:
    torch.manual_seed(0)
    pos = rotating_block(24, n_side=6, omega=0.03)[None].float()  # 36 particles
    types, ids = torch.zeros(36, dtype=torch.long), torch.arange(36)
    cfg = giorom.StepperConfig(
        giorom.statistics(pos, noise_std=0.0), ((0, 1), (0, 1)), radius=1.5 * spacing(6), hidden=32, n_mp=2,
        type_embedding=4,
    )  # fmt: skip
    model, batches = giorom.Stepper(cfg), giorom.WindowBatches(pos, types, ids, cfg, batch_size=1)
    probe = [batches(10_000 + i) for i in range(4)]

    def one_step() -> float:
        with torch.no_grad():
            return sum(
                float(
                    giorom.one_step_mse(
                        model(s)["acc_norm"], model.normalise_acc(s["target"]), model.acc_scale
                    )
                )
                for s in probe
            )

    before = one_step()
    Trainer(model, torch.optim.Adam(model.parameters(), 3e-3), batches, giorom.acceleration_loss, 150,
            progress=False).fit()  # fmt: skip
    after = one_step()
    scale = sum(float((s["target"] ** 2).sum(-1).mean()) for s in probe)  # the accelerations' own size
    assert after < 1e-2 * scale and after < 1e-2 * before, (before, after, scale)
    run = giorom.rollout(model, pos[0, :6].transpose(0, 1), steps=18, types=types)
    mse = giorom.rollout_mse(run.positions, pos[0, 6:], [18])[18]
    assert mse < 0.05 * spacing(6) ** 2  # well under a spacing


def test_window_batches_are_a_function_of_the_step() -> None:
    pos = dataset(n_traj=3, frames=12, n_side=5)
    cfg = giorom.StepperConfig(giorom.statistics(pos), ((0, 1), (0, 1)), radius=0.3)
    ids = torch.stack([torch.randperm(25, generator=torch.Generator().manual_seed(k))[:10] for k in range(3)])
    batches = giorom.WindowBatches(pos, torch.zeros(25, dtype=torch.long), ids, cfg, batch_size=3, seed=4)
    a, b, c = batches(7), batches(7), batches(8)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["pos"], c["pos"])
    assert a["pos"].shape == (30, 6, 2) and a["target"].shape == (30, 2) and a["types"].shape == (30,)
    assert int(a["graph"].max()) < 30 and a["graph"].shape[0] == 2
    # every window is a noisy copy of some true window of the sampled particles, with the exact corrected target
    noisy, nxt = a["pos"][:10], a["pos"][:10, -1] + (a["pos"][:10, -1] - a["pos"][:10, -2]) + a["target"][:10]
    found = False
    for k in range(3):
        for t in range(5, 11):
            truth = pos[k, t - 5 : t + 2][:, ids[k]].transpose(0, 1)
            if torch.allclose(noisy[:, 0], truth[:, 0]) and torch.allclose(nxt, truth[:, -1], atol=1e-6):
                found = True
    assert found


def test_rollout_rebuilds_the_graph_and_times_every_phase() -> None:
    torch.manual_seed(0)
    pos = dataset(n_traj=1, frames=12, n_side=6)
    cfg = giorom.StepperConfig(giorom.statistics(pos), ((0, 1), (0, 1)), radius=0.15, hidden=16, n_mp=2)
    model = giorom.Stepper(cfg)
    ref = pos[0, 0]
    run = giorom.rollout(model, pos[0, :6].transpose(0, 1), 4, decoder=giorom.ShepardDecoder(), reference=ref,
                         queries=ref[:7])  # fmt: skip
    assert run.positions.shape == (4, 36, 2) and run.dense.shape == (4, 7, 2)
    assert all(len(v) == 4 and min(v) > 0 for v in run.times.values())
    # the same steps by hand, each from a graph of the newest positions
    hist = pos[0, :6].transpose(0, 1)
    with torch.no_grad():
        for s in range(4):
            acc = model({"pos": hist, "types": torch.zeros(36, dtype=torch.long)})["acc"]
            nxt = giorom.integrate(hist, acc)
            assert torch.allclose(nxt, run.positions[s], atol=1e-6)
            hist = torch.cat([hist[:, 1:], nxt[:, None]], dim=1)
    assert torch.allclose(run.dense[-1], run.positions[-1][:7], atol=1e-6)  # queries on sparse points: exact


@pytest.mark.parametrize("target", ["clean", "gns"])
def test_window_targets_follow_their_convention(target: str) -> None:
    """'clean' (spec test 2): x̃_t + ṽ_t + a = x_{t+1}; 'gns': x̃_t + ṽ_t + a = x_{t+1} + n_t, i.e. the next
    velocity it implies is the clean one. The window's first position is noise-free, which finds its frame."""
    pos = dataset(n_traj=2, frames=12, n_side=4).double()
    stats = giorom.Statistics((0.0, 0.0), (0.01, 0.01), (0.0, 0.0), (0.01, 0.01), noise_std=1e-3)
    cfg = giorom.StepperConfig(stats, ((0, 1), (0, 1)), radius=0.5, history=3)
    batches = giorom.WindowBatches(
        pos, torch.zeros(16, dtype=torch.long), torch.arange(16), cfg, 1, 3, target
    )
    for step in range(5):
        s = batches(step)
        noisy, a = s["pos"].double(), s["target"].double()
        ((k, f),) = [
            (k, f) for k in range(2) for f in range(12) if torch.equal(pos[k, f].float(), noisy[:, 0].float())
        ]
        clean_last, nxt = pos[k, f + 3], pos[k, f + 4]
        got = noisy[:, -1] + (noisy[:, -1] - noisy[:, -2]) + a
        want = nxt + (noisy[:, -1] - clean_last if target == "gns" else 0.0)
        assert torch.allclose(got, want, atol=1e-6), (target, (got - want).abs().max())
        assert (noisy[:, -1] - clean_last).abs().max() > 1e-5  # the last position did carry noise


def test_an_unknown_window_target_is_one_line() -> None:
    cfg = giorom.StepperConfig(giorom.statistics(dataset(1, 10, 4)), ((0, 1), (0, 1)), radius=0.5)
    with pytest.raises(ConfigError, match="target must be one of"):
        giorom.WindowBatches(
            dataset(1, 10, 4), torch.zeros(16, dtype=torch.long), torch.arange(16), cfg, target="x"
        )
