"""The classification pass of root_select: eager chunks vs the opt-in fused (torch.compile) kernel."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import torch

from sparsenets.prox import classify, root_select, use_fused


@pytest.fixture
def fused_off() -> Iterator[None]:
    """Whatever a test switches on, the rest of the suite runs eagerly."""
    yield
    use_fused(False)


def _h(a: torch.Tensor, t: float, k: float, eta: float) -> float:
    return float(torch.clamp(a.double() * eta - t, 0, 1).sum()) - k


def _case(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = (torch.randn(700_000, generator=g) * (1 + 3 * torch.rand(700_000, generator=g))).abs()
    a[::97] = 0
    return (a * 16).round() / 16 if seed == 1 else a  # seed 1: many ties on the thresholds


@pytest.mark.parametrize("seed", [0, 1])
def test_classify_unit_is_exact_on_the_bracket(seed: int) -> None:
    """Σφ(η) from the classes (count of saturated + linear sum) plus the rest equals Σφ(η) over all groups, in
    float64, everywhere in the bracket; the classes only lose borderline groups to the rest, never gain."""
    a = _case(seed)
    d = a.double()
    for t, left, right in ((0.5, 0.4, 0.45), (0.05, 0.0, 0.2), (3.0, 2.0, 2.001)):
        ones, slope, n_lin, rest = classify.classify_unit(a, t, left, right)
        lo, hi = t / d, (1 + t) / d
        exact_rest = ~((hi <= left) | (lo >= right) | ((lo <= left) & (hi >= right)))
        assert ones <= int((hi <= left).sum()) and n_lin <= int(((lo <= left) & (hi >= right)).sum())
        assert rest.numel() >= int(exact_rest.sum())
        for eta in (left, 0.5 * (left + right), right):
            whole = float(torch.clamp(d * eta - t, 0, 1).sum())
            parts = ones + slope * eta - t * n_lin + float(torch.clamp(rest.double() * eta - t, 0, 1).sum())
            assert parts == pytest.approx(whole, rel=1e-12, abs=1e-9)


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler"
)
def test_fused_pass_matches_eager(fused_off: None) -> None:
    """The compiled kernel returns the eager pass's classes, and root_select stays exact through it."""
    for seed in (0, 1):
        a = _case(seed)
        for t, left, right in ((0.5, 0.4, 0.45), (0.05, 0.0, 0.2), (3.0, 2.0, 2.001)):
            eager = classify.classify_unit(a, t, left, right)
            assert use_fused()
            fused = classify.classify_unit(a, t, left, right)
            assert classify._FUSED is not None, "the fused kernel did not run (compile failed)"
            use_fused(False)
            assert fused[0] == eager[0] and fused[2] == eager[2]
            assert fused[1] == pytest.approx(eager[1], rel=1e-12, abs=1e-9)
            assert torch.equal(fused[3].sort().values, eager[3].sort().values)
    use_fused()
    a = _case(1)
    for k in (10.0, 20_000.0, 300_000.0):
        for t in (1e-3, 0.5, 20.0):
            assert abs(_h(a, t, k, root_select(a, t, k))) <= 1e-9 * k


def test_fused_failure_falls_back_to_eager(fused_off: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that cannot be built (no compiler, a compile error) costs a warning, not a wrong answer."""

    def broken(a: torch.Tensor, th: torch.Tensor) -> None:
        raise RuntimeError("no compiler")

    monkeypatch.setattr(classify, "_FUSED", broken)
    a = _case(0)
    with pytest.warns(UserWarning, match="fused classification unavailable"):
        eta = root_select(a, 0.5, 20_000.0)
    assert classify._FUSED is None
    assert abs(_h(a, 0.5, 20_000.0, eta)) <= 1e-9 * 20_000
