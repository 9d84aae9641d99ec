"""What a GIOROM stepper has to predict: the per-frame accelerations of the study's generated training set, split into
the frame's mean (the bodies' centre-of-mass motion) and the rest (internal motion), with how much each part carries
from one frame to the next (autocorrelation at lags 1..6) and how smooth it is in space (correlation with the mean
acceleration of each particle's 16 nearest neighbours), and how much of it one particle's own velocity history predicts
(R² on the test split of a least-squares fit, on the training split, of the next acceleration from the last 5
velocities: what a per-particle linear extrapolation gets without any neighbour).

    PYTHONPATH=src python benchmarks/giorom_accel_anatomy.py [--materials water jelly]

Reads the sets `sparsenets run giorom-2d` generates (N = 4096, 24 training trajectories of 160 frames).
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from sparsenets.errors import SparsenetsError
from sparsenets.experiments.giorom import arms as A
from sparsenets.experiments.giorom.study import StudyConfig

LAGS = range(1, 7)


def autocorrelation(z: torch.Tensor, lag: int) -> float:
    """Lag-`lag` autocorrelation over frames of z [traj, F, ...], each series centred on its own mean."""
    z = z - z.mean(1, keepdim=True)
    return float((z[:, lag:] * z[:, :-lag]).mean() / (z * z).mean())


def neighbour_correlation(x: torch.Tensor, a: torch.Tensor, k: int = 16) -> float:
    """Correlation of accelerations a [N, d] with their k nearest neighbours' mean (positions x [N, d])."""
    idx = torch.cdist(x, x).topk(k + 1, largest=False).indices[:, 1:]
    own, near = a - a.mean(0), a[idx].mean(1) - a[idx].mean(1).mean(0)
    return float(torch.nn.functional.cosine_similarity(own.flatten(), near.flatten(), dim=0))


def own_history_r2(train: torch.Tensor, test: torch.Tensor, every: int = 8, history: int = 5) -> float:
    """Test R² of a + b·[v_{t−4..t}] → a_t fitted on train, each axis pooled; positions [traj, F, N, d] (every
    `every`-th particle, to bound memory)."""

    def pairs(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = (p[:, 1:, ::every] - p[:, :-1, ::every]).movedim(1, -1)  # [traj, n, d, F − 1]
        windows = v.unfold(-1, history + 1, 1)  # [traj, n, d, windows, history + 1]
        x, y = windows[..., :history], windows[..., history] - windows[..., history - 1]
        return torch.cat(
            [x.reshape(-1, history), torch.ones(x[..., :1].numel(), 1, dtype=x.dtype)], 1
        ), y.reshape(-1)

    x, y = pairs(train)
    w = torch.linalg.lstsq(x, y.unsqueeze(1)).solution
    xt, yt = pairs(test)
    return float(1 - ((xt @ w).squeeze(1) - yt).pow(2).mean() / yt.var())


def main() -> None:
    """Print one Markdown row per material."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--materials", nargs="+", default=["water", "jelly"])
    args = ap.parse_args()
    cfg = dataclasses.asdict(StudyConfig())
    print("| material | acc std | internal share of variance | lag-1…6 autocorrelation, internal | "
          "lag-1, centre of mass | neighbour correlation, internal | own-history linear R² (test) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for material in args.materials:
        try:
            p = A.load_split(material, cfg, "train").positions.double()  # [traj, F, N, d]
            test = A.load_split(material, cfg, "test").positions.double()
        except SparsenetsError as err:  # unknown material or a set not generated yet: one line, exit 2
            ap.error(str(err))
        acc = p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]
        com = acc.mean(2, keepdim=True)
        internal = acc - com
        share = float(internal.var() / acc.var())
        lags = " / ".join(f"{autocorrelation(internal, k):+.2f}" for k in LAGS)
        mid = acc.shape[1] // 4  # a frame after the bodies have started to move
        smooth = neighbour_correlation(p[0, mid + 1], internal[0, mid])
        print(f"| {material} | {float(acc.std()):.2e} | {share:.2f} | {lags} | "
              f"{autocorrelation(com, 1):+.2f} | {smooth:.3f} | {own_history_r2(p, test):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
