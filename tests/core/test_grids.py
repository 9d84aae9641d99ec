"""Support grids: Linear → weight.T, Conv2d → k×k tiles, checked position by position; exact inverse."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import ConfigError
from sparsenets.grids import from_support_grid, support_grid


def test_linear_grid_is_the_transpose_and_round_trips() -> None:
    w = torch.arange(12.0).reshape(3, 4)  # [out, in]
    g = support_grid(w)
    assert g.shape == (4, 3)
    for o in range(3):
        for i in range(4):
            assert g[i, o] == w[o, i]  # column o holds output neuron o's incoming weights
    assert torch.equal(from_support_grid(g, w.shape), w)


@settings(max_examples=30, deadline=None)
@given(c_out=st.integers(1, 4), c_in=st.integers(1, 4), k=st.integers(1, 4))
def test_conv_grid_places_each_kernel_as_a_tile(c_out: int, c_in: int, k: int) -> None:
    w = torch.randn(c_out, c_in, k, k)
    g = support_grid(w)
    assert g.shape == (c_in * k, c_out * k)
    expected = torch.empty(c_in * k, c_out * k)
    for o in range(c_out):  # the spec's definition, one position at a time
        for c in range(c_in):
            for i in range(k):
                for j in range(k):
                    expected[c * k + i, o * k + j] = w[o, c, i, j]
    assert torch.equal(g, expected)
    assert torch.equal(from_support_grid(g, w.shape), w)


def test_grid_keeps_dtype_and_gradients() -> None:
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    g = support_grid(w)
    assert g.dtype == torch.float64
    g.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


@pytest.mark.parametrize("shape", [(2, 3, 3, 5), (4,), (2, 3, 4)])
def test_unsupported_weights_get_one_clear_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="support grid"):
        support_grid(torch.zeros(shape))


def test_a_grid_that_does_not_fit_the_shape_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not fit"):
        from_support_grid(torch.zeros(3, 4), (3, 4))  # Linear [3, 4] has a [4, 3] grid
    with pytest.raises(ConfigError, match="does not fit"):
        from_support_grid(torch.zeros(6, 6), (2, 3, 3, 3))
    with pytest.raises(ConfigError, match="shape must be"):
        from_support_grid(torch.zeros(6, 6), (36,))
