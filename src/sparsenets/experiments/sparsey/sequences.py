"""`sparsey-sequences`: store sequences of MNIST digit images once; recall them from the first element alone.

Each sequence is `length` distinct training images. Learning presents its frames in order (frame t's code is chosen
from U at t and H from the code at t−1, and both weight sets are learned). Cued recall recognises the first frame
and then lets the horizontal (H) input alone choose each next code. A recall is exact when every frame's code
equals the stored one; a corrupted cue has a fraction of its active pixels moved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from sparsenets import data
from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.runs import RunConfig, RunContext, experiment
from sparsenets.sdr import CSAParams, SparseyNet
from sparsenets.sdr.patterns import move_bits
from sparsenets.sdr.preprocess import binarise


@dataclass
class Config(RunConfig):
    """Single mac with a horizontal bundle over binarised MNIST frames."""

    length: int = 6
    counts: tuple[int, ...] = (5, 10, 20, 40, 80)  # numbers of stored sequences
    pool: int = 1  # average-pool factor before binarising (1: 28×28, 2: 14×14)
    q: int = 16
    k: int = 64
    preset: str = "alt-eu10"
    tie_break: str = "fixed"
    moved: tuple[float, ...] = (0.1, 0.2, 0.3)  # corruption of the first element
    seeds: int = 3


def frames_from_mnist(n_frames: int, seed: int, pool: int = 1) -> torch.Tensor:
    """(n_frames, (28/pool)²) binary digits: pool×pool average pooling, then > 0.5; distinct random images."""
    train = data.load("mnist", split="train")
    idx = torch.randperm(len(train.y), generator=torch.Generator().manual_seed(seed))[:n_frames]
    x = train.x[idx]
    return binarise(torch.nn.functional.avg_pool2d(x, pool) if pool > 1 else x).flatten(1)


def store_and_recall(cfg: Config, n_seq: int, seed: int) -> dict:
    """Store n_seq sequences, then recall each from its intact and corrupted first frame."""
    x = frames_from_mnist(n_seq * cfg.length, seed, cfg.pool).view(n_seq, cfg.length, -1)
    net = SparseyNet.single_mac(
        x.shape[-1],
        cfg.q,
        cfg.k,
        CSAParams.preset(cfg.preset, tie_break=cfg.tie_break),
        horizontal=True,
        seed=seed,
    )
    t0 = time.perf_counter()
    stored = torch.stack(
        [torch.stack([r[0].winners[0, 0] for r in net.run_sequence(s[:, None], "learn")]) for s in x]
    )
    learn_s = time.perf_counter() - t0
    out = {"n_seq": n_seq, "learn_s": learn_s}
    gen = torch.Generator().manual_seed(seed + 7)
    for f in (0.0, *cfg.moved):
        cue = move_bits(x[:, 0], f, gen) if f > 0 else x[:, 0]
        rec = net.recall_sequence(cue, cfg.length)
        got = torch.stack([r[0].winners[:, 0] for r in rec], 1)  # (n_seq, length, Q)
        frame_exact = (got == stored).all(-1)
        # the recalled part is frames 2..L (frame 1 is the cue); `with_cue` also asks for the cue's own code
        out[f"exact_{f:.1f}"] = frame_exact[:, 1:].all(1).float().mean().item()
        out[f"exact_with_cue_{f:.1f}"] = frame_exact.all(1).float().mean().item()
        out[f"frames_{f:.1f}"] = frame_exact[:, 1:].float().mean().item()
        out[f"overlap_{f:.1f}"] = (got == stored).float().mean().item()
    out["h_weights_set"] = net.levels[0].h.set_fraction().item()
    out["u_weights_set"] = net.levels[0].u.set_fraction().item()
    return out


@experiment(
    "sparsey-sequences",
    Config,
    quick={"counts": (5, 20), "seeds": 1},
    description="Sparsey sequence memory on MNIST digit sequences: recall from an intact or corrupted first frame",
)
def run(cfg: Config, ctx: RunContext) -> dict:
    """Exact sequence recall against the number stored, per cue corruption, seed means."""
    rows = []
    for n in cfg.counts:
        rs = [store_and_recall(cfg, n, ctx.seed + s) for s in range(cfg.seeds)]
        row = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
        row["exact_0.0_min"] = min(r["exact_0.0"] for r in rs)
        rows.append(row)
        ctx.log(f"n={n}: " + " ".join(f"{k}={v:.3f}" for k, v in row.items() if k.startswith("exact")))
    ctx.save_json("rows.json", rows)
    cap = 0
    for r in rows:
        if r["exact_0.0_min"] < 1.0:
            break
        cap = int(r["n_seq"])
    _figure(ctx, cfg, rows)
    lines = [
        f"Single mac Q={cfg.q}, K={cfg.k} (`{cfg.preset}`) with a horizontal bundle; sequences of {cfg.length} "
        f"distinct {28 // cfg.pool}×{28 // cfg.pool} binarised MNIST digits; {cfg.seeds} seeds. Exact = every frame's recalled code equals the "
        "stored code for every recalled frame (2..L); the last column also requires the cue frame's own code.",
        "",
        "| sequences | exact (intact cue) | "
        + " | ".join(f"exact ({f:.0%} moved)" for f in cfg.moved)
        + " | frames exact (intact) | H weights set | exact incl. cue code (intact) |",
        "|---|---|" + "---|" * len(cfg.moved) + "---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {int(r['n_seq'])} | {r['exact_0.0']:.3f} | "
            + " | ".join(f"{r[f'exact_{f:.1f}']:.3f}" for f in cfg.moved)
            + f" | {r['frames_0.0']:.3f} | {r['h_weights_set']:.3f} | {r['exact_with_cue_0.0']:.3f} |"
        )
    lines += [
        "",
        f"Sequence capacity (every sequence exact from an intact cue, every seed): {cap} sequences "
        f"({cap * cfg.length} frames).",
    ]
    ctx.write_report("\n".join(lines))
    return {"capacity_sequences": cap, "rows": rows}


def _figure(ctx: RunContext, cfg: Config, rows: list[dict]) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    n = [r["n_seq"] for r in rows]
    for f in (0.0, *cfg.moved):
        ax.plot(n, [r[f"exact_{f:.1f}"] for r in rows], marker="o", label=f"cue {f:.0%} moved")
    ax.set(
        xscale="log",
        xlabel="stored sequences",
        ylabel="fraction recalled exactly",
        title=f"sequence recall, length {cfg.length}",
    )
    plain_log_ticks(ax.xaxis)  # 5, 20 rather than 5×10^0, 2×10^1
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "sequence_recall")
