"""Spec sanity tests 1 and 2 (integrator, noise targets) and the statistics/feature functions."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.giorom import corrected_target, displacement_scale, integrate, random_walk_noise, statistics
from sparsenets.giorom.features import node_inputs
from tests.giorom.synthetic import rotating_block

torch.set_num_threads(1)


@settings(max_examples=20, deadline=None)
@given(omega=st.floats(0.0, 0.1), gravity=st.floats(0.0, 1e-3), frames=st.integers(8, 60))
def test_integrator_reproduces_a_trajectory_from_its_accelerations(omega, gravity, frames) -> None:
    truth = rotating_block(frames, n_side=5, omega=omega, gravity=gravity).float()
    acc = truth[2:] - 2 * truth[1:-1] + truth[:-2]  # the ground truth's accelerations, frame by frame
    x = [truth[0], truth[1]]
    for a in acc:  # feed them back one step at a time, as a rollout would
        x.append(integrate(torch.stack([x[-2], x[-1]], dim=1), a))
    err = (torch.stack(x) - truth).abs().max()
    assert err < 1e-6 * frames, err


@settings(max_examples=25, deadline=None)
@given(sigma=st.floats(1e-6, 1e-2), history=st.integers(1, 6), m=st.integers(1, 40), seed=st.integers(0, 99))
def test_noise_targets_are_exact(sigma, history, m, seed) -> None:
    g = torch.Generator().manual_seed(seed)
    window = torch.rand(m, history + 1, 2, generator=g, dtype=torch.float64)
    next_pos = torch.rand(m, 2, generator=g, dtype=torch.float64)
    noise = random_walk_noise(window, sigma, g)
    assert torch.equal(noise[:, 0], torch.zeros(m, 2, dtype=torch.float64))  # first position clean
    noisy = window + noise
    target = corrected_target(noisy, next_pos)
    v_last = noisy[:, -1] - noisy[:, -2]
    assert torch.allclose(noisy[:, -1] + v_last + target, next_pos, rtol=0, atol=1e-14)
    assert not torch.equal(noisy[:, -1], window[:, -1])


def test_random_walk_has_the_stated_variance() -> None:
    # velocity k carries the sum of k draws of N(0, σ²/C): the last one has std σ, the first σ/√C
    sigma, c = 3e-4, 5
    window = torch.zeros(200_000, c + 1, 1, dtype=torch.float64)
    noise = random_walk_noise(window, sigma, torch.Generator().manual_seed(0))
    vel = noise[:, 1:] - noise[:, :-1]
    assert abs(float(vel[:, -1].std()) / sigma - 1) < 0.01
    assert abs(float(vel[:, 0].std()) / (sigma / math.sqrt(c)) - 1) < 0.01
    assert (
        abs(float(noise[:, -1].std()) / (sigma * math.sqrt(sum(k * k for k in range(1, 6)) / c)) - 1) < 0.01
    )


def test_statistics_match_a_numpy_computation_over_all_frames() -> None:
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(3, 9, 7, 2, generator=g)
    s = statistics(pos, noise_std=1e-3)
    x = pos.double().numpy()
    v = np.diff(x, axis=1).reshape(-1, 2)
    a = np.diff(x, n=2, axis=1).reshape(-1, 2)
    assert np.allclose(s.vel_mean, v.mean(0), atol=1e-12) and np.allclose(s.vel_std, v.std(0), atol=1e-9)
    assert np.allclose(s.acc_mean, a.mean(0), atol=1e-12) and np.allclose(s.acc_std, a.std(0), atol=1e-9)
    assert s.noise_std == 1e-3


def test_node_inputs_normalise_velocities_and_clip_wall_distances() -> None:
    window = torch.tensor([[[0.5, 0.02], [0.52, 0.01]]])  # one particle, C = 1, near the lower y wall
    mean, scale = torch.tensor([0.01, 0.0]), torch.tensor([0.01, 0.02])
    feats = node_inputs(window, mean, scale, torch.zeros(2), torch.ones(2), radius=0.1)
    v = torch.tensor([0.02, -0.01])
    walls = torch.tensor([1.0, 0.1, 1.0, 1.0])  # (x − low)/R, (high − x)/R clipped to [−1, 1]
    assert torch.allclose(feats[0], torch.cat([(v - mean) / scale, walls]), atol=1e-6)


def test_node_inputs_append_normalised_second_differences_when_asked() -> None:
    window = torch.rand(5, 6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    vm, vs, am, as_ = (torch.rand(2, dtype=torch.float64) + 0.1 for _ in range(4))
    low, high = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    base = node_inputs(window, vm, vs, low, high, 0.1)
    feats = node_inputs(window, vm, vs, low, high, 0.1, (am, as_))
    x = window.numpy()
    acc = (np.diff(x, n=2, axis=1) - am.numpy()) / as_.numpy()  # [M, C − 1, d], oldest first
    assert feats.shape == (5, base.shape[1] + 4 * 2)
    assert torch.equal(feats[:, : base.shape[1]], base)
    assert np.allclose(feats[:, base.shape[1] :].numpy(), acc.reshape(5, -1), atol=1e-12)


def test_displacement_scale_is_the_rms_displacement_from_the_reference() -> None:
    pos = torch.rand(2, 5, 4, 2, generator=torch.Generator().manual_seed(3))
    x = pos.double().numpy()
    want = np.sqrt(((x - x[:, :1]) ** 2).mean())
    assert abs(displacement_scale(pos) - want) < 1e-9
    ref = torch.zeros(2, 4, 2)
    assert abs(displacement_scale(pos, ref) - np.sqrt((x**2).mean())) < 1e-9
