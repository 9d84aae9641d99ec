"""Sanity tests of the Code Selection Algorithm's math (spec sparsey.md, "Sanity tests")."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sparsenets.errors import ConfigError
from sparsenets.sdr import CSAParams, eta, familiarity, input_sums, mu, select, selection_probs

PRESETS = ["alt", "core", "core-ratcheted", "sparseypy", "pulinagrawal"]

# Spec table: P(max-V cell wins), K = 10, one stored item, other cells V = 0, G = V = s.
S_VALUES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
TABLE = {
    "core": [0.10, 0.18, 0.27, 0.36, 0.42, 0.48],
    "core-ratcheted": [0.10, 0.10, 0.33, 0.49, 0.63, 0.81],
    "alt": [0.10, 0.10, 0.80, 0.97, 0.99, 0.99],
    "sparseypy": [0.10, 0.10, 0.94, 0.94, 0.94, 0.94],
    "pulinagrawal": [0.10, 0.10, 0.19, 0.97, 1.0, 1.0],
}


def test_eta_limits_and_mu_bounds() -> None:
    p = CSAParams()
    k = 10
    g = torch.linspace(0, 1, 101)
    e = eta(g, k, p)
    assert torch.all(e[g <= p.g_minus] == 1.0)
    assert e[-1].item() == pytest.approx(1 + p.chi * k)
    assert torch.all(e[1:] >= e[:-1])  # monotone in G
    v = torch.rand(101, 3, k)
    m = mu(v, e, p)
    assert torch.all(m >= 1.0) and torch.all(m <= e[:, None, None] + 1e-4)


@settings(max_examples=40, deadline=None)
@given(
    q=st.integers(1, 6),
    k=st.integers(1, 12),
    b=st.integers(1, 4),
    preset=st.sampled_from(PRESETS),
    seed=st.integers(0, 10_000),
)
def test_rho_is_a_distribution_and_one_winner_per_cm(q: int, k: int, b: int, preset: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    v = torch.rand(b, 2, q, k, generator=gen)
    g = familiarity(v)
    assert torch.all((g >= 0) & (g <= 1))
    rho = selection_probs(v, g, CSAParams.preset(preset))
    assert torch.all(rho >= 0)
    torch.testing.assert_close(rho.sum(-1), torch.ones(b, 2, q))
    for how in ("sample", "argmax"):
        w = select(v, rho, how, gen)
        assert w.shape == (b, 2, q) and w.dtype == torch.long
        assert torch.all((w >= 0) & (w < k))
    # argmax picks a maximal-V cell
    w = select(v, rho, "argmax", gen)
    assert torch.all(v.gather(-1, w[..., None])[..., 0] == v.amax(-1))


def test_low_familiarity_gives_uniform_winners() -> None:
    gen = torch.Generator().manual_seed(1)
    k, n = 8, 40_000
    v = 0.1 * torch.rand(n, 1, 1, k, generator=gen)  # max V <= 0.1 = G⁻
    g = familiarity(v)
    assert torch.all(g <= 0.1)
    rho = selection_probs(v, g, CSAParams())
    torch.testing.assert_close(rho, torch.full_like(rho, 1 / k))
    counts = torch.bincount(select(v, rho, "sample", gen).flatten(), minlength=k)
    _, pvalue = stats.chisquare(counts.numpy())
    assert pvalue > 1e-3, counts


@pytest.mark.parametrize("preset", list(TABLE))
def test_win_rates_match_the_spec_table(preset: str) -> None:
    p = CSAParams.preset(preset)
    gen = torch.Generator().manual_seed(2)
    n, k = 20_000, 10
    for s, expected in zip(S_VALUES, TABLE[preset]):
        v = torch.zeros(n, 1, 1, k)
        v[..., 0] = s
        rho = selection_probs(v, familiarity(v), p)
        assert rho[0, 0, 0, 0].item() == pytest.approx(expected, abs=0.006), (preset, s)
        rate = (select(v, rho, "sample", gen) == 0).float().mean().item()
        assert rate == pytest.approx(expected, abs=0.015), (preset, s, rate)


def test_e_u_ten_row() -> None:
    p = CSAParams.preset("alt-eu10")
    for s, expected in [(0.6, 0.10), (0.8, 0.10), (0.9, 0.45), (1.0, 0.99)]:
        v = torch.zeros(1, 1, 1, 10)
        v[..., 0] = s**p.e_u
        rho = selection_probs(v, familiarity(v), p)
        assert rho[0, 0, 0, 0].item() == pytest.approx(expected, abs=0.01)


def test_input_sums_brute_force() -> None:
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(5, 3, 7, generator=gen) < 0.4).float()
    w = (torch.rand(3, 7, 12, generator=gen) < 0.5).float()
    u = input_sums(x, w)
    for b in range(5):
        for m in range(3):
            for c in range(12):
                assert u[b, m, c].item() == sum(x[b, m, j].item() * w[m, j, c].item() for j in range(7))


def test_bad_params_raise() -> None:
    with pytest.raises(ConfigError, match="variant"):
        CSAParams(variant="nope")
    with pytest.raises(ConfigError, match="g_minus"):
        CSAParams(g_minus=1.0)
    with pytest.raises(ConfigError, match="learn_select"):
        CSAParams(learn_select="greedy")
