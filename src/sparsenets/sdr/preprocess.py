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
