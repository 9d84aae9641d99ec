"""Knowledge distillation loss: reduces to cross-entropy, matches the formula written out, rejects bad settings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import ConfigError
from sparsenets.train import check_distill, distill_loss


def _by_hand(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, alpha: float, temp: float) -> torch.Tensor:
    """(1 − α)·CE + α·T²·mean_b Σ_c q (log q − log p), with the softmaxes computed directly."""
    p = torch.exp(s / temp) / torch.exp(s / temp).sum(-1, keepdim=True)
    q = torch.exp(t / temp) / torch.exp(t / temp).sum(-1, keepdim=True)
    ce = -torch.log(torch.softmax(s, -1)[torch.arange(len(y)), y]).mean()
    kl = (q * (q.log() - p.log())).sum(-1).mean()
    return (1 - alpha) * ce + alpha * temp**2 * kl


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(2, 7),
    st.floats(0.0, 1.0),
    st.floats(0.5, 8.0),
    st.integers(0, 10_000),
)
def test_distill_loss_matches_the_formula_written_out(
    b: int, c: int, alpha: float, temp: float, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    s, t = (
        torch.randn(b, c, generator=g, dtype=torch.float64),
        torch.randn(b, c, generator=g, dtype=torch.float64),
    )
    y = torch.randint(0, c, (b,), generator=g)
    got = distill_loss(s, t, y, alpha, temp)
    assert float(got) == pytest.approx(float(_by_hand(s, t, y, alpha, temp)), rel=1e-9, abs=1e-12)


def test_distill_loss_limits_and_gradient_stays_off_the_teacher() -> None:
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0])
    assert torch.equal(distill_loss(s, t, y, 0.0, 4.0), F.cross_entropy(s, y))
    assert float(distill_loss(s, s.detach().clone(), y, 1.0, 3.0).detach()) == pytest.approx(0.0, abs=1e-6)
    distill_loss(s, t, y, 0.7, 2.0).backward()
    assert s.grad is not None and t.grad is None


@pytest.mark.parametrize(
    ("alpha", "temp", "message"),
    [
        (-0.1, 4.0, "distill must be a weight in"),
        (1.5, 4.0, "distill must be a weight in"),
        (math.nan, 4.0, "distill must be a weight in"),
        (0.5, 0.0, "distill_temperature must be"),
        (0.5, math.inf, "distill_temperature must be"),
        (0.5, math.nan, "distill_temperature must be"),
    ],
)
def test_check_distill_rejects_bad_settings(alpha: float, temp: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_distill(alpha, temp)
    with pytest.raises(ConfigError, match=message):  # the loss itself checks too
        distill_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), alpha, temp)
    check_distill(0.0, 4.0)
    check_distill(1.0, 0.5)
