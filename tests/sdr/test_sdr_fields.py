"""Receptive fields, patterns and preprocessing used by Sparsey, checked against brute force."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import SparsenetsError
from sparsenets.sdr.fields import expand_to_cells, grid_positions, patch_fields, radius_fields
from sparsenets.sdr.patterns import jaccard, move_bits, occlude, random_patterns
from sparsenets.sdr.preprocess import binarise, skeletonise


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 12), w=st.integers(3, 12), patch=st.integers(1, 3), stride=st.integers(1, 3))
def test_patch_fields_brute_force(h: int, w: int, patch: int, stride: int) -> None:
    rf, (rows, cols) = patch_fields(h, w, patch, stride)
    assert rf.shape == (rows * cols, patch * patch)
    img = torch.arange(h * w).view(h, w)
    for i, (r0, c0) in enumerate(
        (r, c) for r in range(0, h - patch + 1, stride) for c in range(0, w - patch + 1, stride)
    ):
        assert rf[i].tolist() == img[r0 : r0 + patch, c0 : c0 + patch].flatten().tolist()


def test_radius_fields_brute_force() -> None:
    src, dst = grid_positions(5, 6), grid_positions(2, 3)
    rf = radius_fields(src, dst, 0.3)
    for m in range(6):
        want = [j for j in range(30) if math.dist(src[j].tolist(), dst[m].tolist()) <= 0.3]
        assert [j for j in rf[m].tolist() if j >= 0] == want
    cells = expand_to_cells(rf, 4)
    assert cells.shape[1] == rf.shape[1] * 4
    assert cells[0, :4].tolist() == [rf[0, 0].item() * 4 + c for c in range(4)]
    with pytest.raises(SparsenetsError, match="non-empty"):
        radius_fields(src, dst, 0.0001)


def test_patterns_keep_density_and_overlap() -> None:
    gen = torch.Generator().manual_seed(0)
    x = random_patterns(20, 100, 10, gen)
    assert torch.all(x.sum(1) == 10)
    y = move_bits(x, 0.3, gen)
    assert torch.all(y.sum(1) == 10) and torch.all((x * y).sum(1) == 7)
    assert torch.allclose(jaccard(x, y), torch.full((20,), 7 / 13))
    z = occlude(x, 0.5, gen)
    assert torch.all(z.sum(1) == 5) and torch.all(z <= x)


def test_skeleton_of_a_bar_is_one_pixel_wide() -> None:
    img = torch.zeros(1, 1, 9, 16)
    img[0, 0, 3:6, 2:14] = 1.0  # a 3-pixel-thick bar
    b = binarise(img)
    s = skeletonise(b)
    assert torch.all(s <= b)  # thinning only removes pixels
    assert s.sum() > 0
    cols = s[0, :, 4:12].sum(0)
    assert torch.all(cols == 1), cols  # one pixel per interior column
    with pytest.raises(SparsenetsError, match="images"):
        binarise(torch.zeros(4, 4))


def test_deskew_straightens_a_slanted_stroke() -> None:
    from sparsenets.sdr.preprocess import deskew

    img = torch.zeros(1, 1, 28, 28)
    for r in range(4, 24):
        c = 8 + (r - 4) // 2  # a stroke leaning right by 1 column per 2 rows
        img[0, 0, r, c : c + 2] = 1.0

    def covariance(x: torch.Tensor) -> float:
        ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        m = x.sum()
        cy, cx = (x * ys).sum() / m, (x * xs).sum() / m
        return ((x * (ys - cy) * (xs - cx)).sum() / m).item()

    before, after = covariance(img[0, 0]), covariance(deskew(img)[0, 0])
    assert before > 10 and abs(after) < 0.05 * before
