"""Image preprocessing for Sparsey's binary inputs: binarise and skeletonise (Zhang–Suen thinning), batched."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsenets.errors import SparsenetsError


def binarise(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N, 1, H, W) or (N, H, W) intensities → (N, H, W) 0/1 float (pixel > threshold)."""
    if images.dim() == 4:
        images = images[:, 0]
    if images.dim() != 3:
        raise SparsenetsError(f"images must be (N, H, W) or (N, 1, H, W), got shape {tuple(images.shape)}")
    return (images > threshold).to(torch.float32)


def _neighbours(x: torch.Tensor) -> list[torch.Tensor]:
    """P2..P9 (N, NE, E, SE, S, SW, W, NW) of every pixel; (N, H, W) → 8 × (N, H, W), zero outside."""
    p = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[1:]
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [p[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] for dr, dc in offsets]


def skeletonise(binary: torch.Tensor, max_iter: int = 50) -> torch.Tensor:
    """Zhang–Suen thinning of a batch of binary images to one-pixel-wide strokes; (N, H, W) → (N, H, W)."""
    x = binary.to(torch.float32).clone()
    for _ in range(max_iter):
        changed = False
        for first in (True, False):
            n = _neighbours(x)
            b = sum(n)
            ring = [*n, n[0]]
            a = sum(((1 - ring[i]) * ring[i + 1]) for i in range(8))  # 0→1 transitions around the pixel
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if first:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            delete = (x == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            if bool(delete.any()):
                x[delete] = 0
                changed = True
        if not changed:
            break
    return x


def deskew(images: torch.Tensor) -> torch.Tensor:
    """Remove each image's slant with the shear that zeroes its second-moment x–y covariance (batched).

    (N, 1, H, W) or (N, H, W) intensities in [0, 1] → same shape; the centre of mass moves to the image centre.
    """
    squeeze = images.dim() == 3
    x = images[:, None] if squeeze else images
    if x.dim() != 4 or x.shape[1] != 1:
        raise SparsenetsError(f"images must be (N, H, W) or (N, 1, H, W), got shape {tuple(images.shape)}")
    h, w = x.shape[2:]
    ys = torch.arange(h, dtype=x.dtype)[:, None].expand(h, w)
    xs = torch.arange(w, dtype=x.dtype)[None, :].expand(h, w)
    m = x[:, 0].sum((1, 2)).clamp(min=1e-6)
    cy = (x[:, 0] * ys).sum((1, 2)) / m
    cx = (x[:, 0] * xs).sum((1, 2)) / m
    var_y = (x[:, 0] * (ys - cy[:, None, None]) ** 2).sum((1, 2)) / m
    cov = (x[:, 0] * (ys - cy[:, None, None]) * (xs - cx[:, None, None])).sum((1, 2)) / m
    alpha = cov / var_y.clamp(min=1e-6)
    # Output pixel (y, x) samples input (y + cy − c_y0, x + alpha·(y − c_y0) + cx − c_x0) about the centre.
    c0y, c0x = (h - 1) / 2, (w - 1) / 2
    src_y = ys[None] + (cy - c0y)[:, None, None]
    src_x = xs[None] + alpha[:, None, None] * (ys[None] - c0y) + (cx - c0x)[:, None, None]
    grid = torch.stack([2 * src_x / (w - 1) - 1, 2 * src_y / (h - 1) - 1], -1)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0] if squeeze else out
