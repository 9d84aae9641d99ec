"""The classification pass of root_select: exact class statistics, borderline groups only ever in the rest."""

from __future__ import annotations

import pytest
import torch

from sparsenets.prox import classify


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
