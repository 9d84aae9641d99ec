"""Spec sanity test 6: an elastic block at rest drifts far less than one particle spacing over 100 rollout steps.

The data are our own MPM: a 256-particle jelly block released on the floor, which settles within about 100
frames and then stays exactly still. A small stepper trained on that trajectory with random-walk noise must hold
the rest state; the same stepper untrained drifts by more than a spacing, so the bound is not met by luck.
"""

from __future__ import annotations

import pytest
import torch

from sparsenets import giorom
from sparsenets.sim import block_scene, simulate
from sparsenets.sim.scenes import WALLS
from sparsenets.train import Trainer

N, SIZE, FRAMES, REST_FROM, HORIZON = 256, (0.25, 0.12), 200, 150, 100


@pytest.fixture(scope="module")
def resting_block() -> tuple[torch.Tensor, torch.Tensor, float]:
    """([1, FRAMES, N, 2] positions, [N] types, mean spacing) of a jelly block that settles on the floor."""
    scene = block_scene(N, (WALLS[0] + 0.3, WALLS[0]), SIZE, seed=0)
    traj = simulate(scene, "jelly", frames=FRAMES)
    pos = torch.as_tensor(traj.positions)[None]
    still = (pos[0, REST_FROM + 1 :] - pos[0, REST_FROM:-1]).norm(dim=-1).max()
    assert still < 1e-6, f"the block has not settled by frame {REST_FROM} (max frame velocity {still:.2e})"
    return pos, torch.as_tensor(traj.types), (SIZE[0] * SIZE[1] / N) ** 0.5


def _max_drift(pos: torch.Tensor, types: torch.Tensor, spacing: float, train_steps: int) -> float:
    """Largest distance, in spacings, any particle moves in a HORIZON-step rollout from the rest state."""
    torch.manual_seed(0)
    stats = giorom.statistics(pos, noise_std=1e-6)
    cfg = giorom.StepperConfig(stats, ((WALLS[0], WALLS[1]),) * 2, radius=2.5 * spacing, hidden=32, n_mp=2)
    model = giorom.Stepper(cfg)
    batches = giorom.WindowBatches(pos, types, torch.arange(N), cfg, batch_size=2, seed=0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    Trainer(model, opt, batches, giorom.acceleration_loss, train_steps, progress=False, device="cpu").fit()
    start = REST_FROM + cfg.history
    with torch.no_grad():
        run = giorom.rollout(model, pos[0, REST_FROM : start + 1].transpose(0, 1), HORIZON, types=types)
    return float((run.positions - pos[0, start]).norm(dim=-1).max()) / spacing


def test_a_trained_stepper_holds_an_elastic_block_at_rest(resting_block) -> None:
    pos, types, spacing = resting_block
    torch.set_num_threads(1)
    trained = _max_drift(pos, types, spacing, train_steps=150)
    untrained = _max_drift(pos, types, spacing, train_steps=1)
    assert trained < 0.1, f"trained stepper drifts {trained:.3f} spacings over {HORIZON} steps"
    assert untrained > 0.5, (
        f"an untrained stepper already holds the block ({untrained:.3f}): the test is void"
    )
