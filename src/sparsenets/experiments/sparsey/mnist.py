"""`sparsey-mnist`: a 2-level Sparsey model on real MNIST, one pass, against k-NN on pixels at equal size."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from sparsenets import data
from sparsenets.errors import ConfigError
from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.runs import RunConfig, RunContext, experiment
from sparsenets.sdr import CSAParams, LabelNodes, LevelSpec, LinearProbe, NearestCode, SparseyNet, UpperLevel
from sparsenets.sdr.preprocess import binarise, deskew, skeletonise


@dataclass
class Config(RunConfig):
    """Spec "Small-scale reproduction", step 2 (28×28 kept; L1 on square patches; L2 one mac over all of L1)."""

    per_class: tuple[int, ...] = (20, 50, 100, 200)  # training images per class (first of each class)
    full: bool = True  # also train on all 60000
    deskew: bool = True  # moment-based shear before binarising (k-NN gets the same pixels)
    skeleton: bool = False
    patch: int = 7
    stride: int = 3
    q1: int = 8
    k1: int = 8
    band1: tuple[float, float] = (0.05, 0.7)
    q2: int = 16
    k2: int = 16
    grid2: tuple[int, int] = (4, 4)  # L2 macs; each sees the L1 macs within radius2 (normalised positions)
    radius2: float | None = 0.3
    e_u: float = 1.0
    inflection: float = 0.85  # spec `alt`: 0.424; raised so few-pixel patch overlaps do not count as familiar
    g_minus: float = 0.5  # spec: 0.1
    tie_break: str = "fixed"
    freeze: float | None = (
        None  # mac-level freezing (the spec's 0.5 lets one cell's union grow to the whole RF)
    )
    cell_freeze1: float | None = 0.3  # our per-cell cap on each L1 cell's set afferent weights
    cell_freeze2: float | None = 0.1  # same for L2
    readout_codes: str = "recognise"  # fit readouts on training codes as learned, or as recognised afterwards
    test_limit: int = 0  # 0: all 10000 test images


def _subset(y: torch.Tensor, per_class: int) -> torch.Tensor:
    return torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(10)])


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return (pred == y).float().mean().item()


def evaluate(
    cfg: Config, xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor, seed: int
) -> dict:
    """Train one model on (N, 784) binary images once, in order; return accuracies and times."""
    p = CSAParams(e_u=cfg.e_u, inflection=cfg.inflection, g_minus=cfg.g_minus, tie_break=cfg.tie_break)
    net = SparseyNet.image_hierarchy(
        28,
        28,
        LevelSpec(cfg.q1, cfg.k1, cfg.band1),
        cfg.patch,
        cfg.stride,
        [UpperLevel(LevelSpec(cfg.q2, cfg.k2, (0.0, 1.0)), tuple(cfg.grid2), cfg.radius2)],
        params=p,
        freeze_threshold=cfg.freeze,
        seed=seed,
        cell_freeze=[cfg.cell_freeze1, cfg.cell_freeze2],
    )
    t0 = time.perf_counter()
    res = net.learn(xtr)
    learn_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = net.recognise(xte)
    recog_s = time.perf_counter() - t0
    top = net.levels[-1].size
    train_codes, test_codes = net.cells(res[-1], 1), net.cells(test[-1], 1)  # top level: all L2 macs
    if cfg.readout_codes not in ("recognise", "learn"):
        raise ConfigError(f"readout_codes must be 'recognise' or 'learn', got {cfg.readout_codes!r}")
    if cfg.readout_codes == "recognise":  # what the finished memory returns for each training image
        train_codes = net.cells(net.recognise(xtr)[-1], 1)
    out = {
        "n_train": len(xtr),
        "learn_s": learn_s,
        "recognise_s": recog_s,
        "learn_ms_per_item": 1e3 * learn_s / len(xtr),
        "g_top_train": res[-1].g.mean().item(),
        "g_top_test": test[-1].g.mean().item(),
        "l1_frozen": net.levels[0].u.frozen.float().mean().item(),
        "l2_weights_set": net.levels[1].u.set_fraction().mean().item(),
    }
    readouts = {
        "label_nodes": LabelNodes(top, 10),
        "label_nodes_norm": LabelNodes(top, 10, "normalised"),
        "nearest_code": NearestCode(1),
        "nearest_code5": NearestCode(5),
        "linear_probe": LinearProbe(top, 10),
    }
    for name, r in readouts.items():
        out[f"acc_{name}"] = _accuracy(r.fit(train_codes, ytr).predict(test_codes), yte)
    n = min(len(train_codes), 2000)
    ov = train_codes[:n] @ train_codes[:n].T
    same = ytr[:n, None] == ytr[None, :n]
    off = ~torch.eye(n, dtype=torch.bool)
    out["overlap_within"] = ov[same & off].mean().item()
    out["overlap_between"] = ov[~same].mean().item()
    out["overlap_between_se"] = (ov[~same].std() / np.sqrt(int((~same).sum()))).item()
    return out


def knn(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor) -> dict:
    """k-NN (Hamming) on binary pixels, k = 1 and 3."""
    return {f"knn{k}": _accuracy(NearestCode(k, "hamming").fit(xtr, ytr).predict(xte), yte) for k in (1, 3)}


@experiment(
    "sparsey-mnist",
    Config,
    quick={"per_class": (20,), "full": False, "test_limit": 1000},
    description="2-level Sparsey on MNIST: one pass, 200/class and 60000, vs k-NN on pixels",
)
def run(cfg: Config, ctx: RunContext) -> dict:
    """Accuracy of three readouts against training size, with k-NN on the same images."""
    train, test = data.load("mnist", split="train"), data.load("mnist", split="test")
    xtr, xte, yte = train.x, test.x, test.y
    if cfg.test_limit:
        xte, yte = xte[: cfg.test_limit], yte[: cfg.test_limit]
    raw_tr, raw_te = binarise(xtr), binarise(xte)
    btr, bte = (binarise(deskew(xtr)), binarise(deskew(xte))) if cfg.deskew else (raw_tr, raw_te)
    str_, ste = (skeletonise(btr), skeletonise(bte)) if cfg.skeleton else (btr, bte)
    sizes = [_subset(train.y, pc) for pc in cfg.per_class]
    if cfg.full:
        sizes.append(torch.arange(len(train.y)))
    rows = []
    for idx in sizes:
        # Shuffle within the subset so classes interleave during single-pass storage.
        idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(ctx.seed))]
        row = evaluate(cfg, str_[idx].flatten(1), train.y[idx], ste.flatten(1), yte, ctx.seed)
        row.update(
            {f"pixels_{k}": v for k, v in knn(btr[idx].flatten(1), train.y[idx], bte.flatten(1), yte).items()}
        )
        if cfg.deskew:  # k-NN on the raw binarised pixels too
            raw = knn(raw_tr[idx].flatten(1), train.y[idx], raw_te.flatten(1), yte)
            row.update({f"raw_pixels_{k}": v for k, v in raw.items()})
        if cfg.skeleton:
            row.update(
                {
                    f"skeleton_{k}": v
                    for k, v in knn(str_[idx].flatten(1), train.y[idx], ste.flatten(1), yte).items()
                }
            )
        rows.append(row)
        ctx.log(
            f"n={row['n_train']}: "
            + " ".join(f"{k}={v:.3f}" for k, v in row.items() if k.startswith(("acc", "pix")))
        )
    ctx.save_json("rows.json", rows)
    _figure(ctx, rows)
    keys = (
        "acc_label_nodes",
        "acc_label_nodes_norm",
        "acc_nearest_code",
        "acc_nearest_code5",
        "acc_linear_probe",
    )
    best = {r["n_train"]: max(r[k] for k in keys) for r in rows}
    m: dict = {"rows": rows}
    for r in rows:
        n = r["n_train"]
        m[f"n{n}_label_nodes"] = r["acc_label_nodes"]
        m[f"n{n}_best_readout"] = best[n]
        m[f"n{n}_knn1_pixels"] = r["pixels_knn1"]
        m[f"n{n}_learn_s"] = r["learn_s"]
    ctx.write_report(_report(cfg, rows, quick=ctx.quick))
    return m


def _figure(ctx: RunContext, rows: list[dict]) -> None:
    import matplotlib.pyplot as plt

    n = [r["n_train"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in [
        ("acc_label_nodes", "Sparsey: label nodes"),
        ("acc_nearest_code", "Sparsey: nearest code"),
        ("acc_linear_probe", "Sparsey: linear probe"),
        ("pixels_knn1", "k-NN (k=1) binary pixels"),
        ("pixels_knn3", "k-NN (k=3) binary pixels"),
        ("raw_pixels_knn1", "k-NN (k=1) binary pixels, not deskewed"),
        ("skeleton_knn1", "k-NN (k=1) skeleton pixels"),
    ]:
        if key in rows[0]:
            ax.plot(n, [r[key] for r in rows], marker="o", label=label)
    ax.axhline(0.91, color="grey", ls=":", label="reported 91% at 2000")
    ax.set(
        xscale="log",
        xlabel="training images (one pass)",
        ylabel="test accuracy",
        title="MNIST: Sparsey vs k-NN",
    )
    plain_log_ticks(ax.xaxis)  # 200, 1000 rather than 2×10^2, 10^3
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "accuracy_vs_training_size")


def _report(cfg: Config, rows: list[dict], quick: bool = False) -> str:
    """The config line, one table row per training size, and the paper's claim (no verdict for a smoke run)."""
    pre = ("skeletonised " if cfg.skeleton else "") + ("deskewed, " if cfg.deskew else "")
    readout = "recognised after storage" if cfg.readout_codes == "recognise" else "learned"
    lines = [
        f"2 levels: L1 {cfg.q1}×{cfg.k1} macs on {cfg.patch}×{cfg.patch} patches (stride {cfg.stride}) of {pre}"
        f"binarised 28×28 digits; L2 a {cfg.grid2[0]}×{cfg.grid2[1]} grid of {cfg.q2}×{cfg.k2} macs, each over "
        f"the L1 macs within radius {cfg.radius2}; `alt` CSA (e_U = {cfg.e_u}, inflection {cfg.inflection}, "
        f"G⁻ = {cfg.g_minus}, {cfg.tie_break} tie-break), mac freezing {cfg.freeze}, per-cell freezing "
        f"{cfg.cell_freeze1} / {cfg.cell_freeze2} (L1 / L2, our option); readouts fit on training codes as "
        f"{readout}; one pass, one thread. k-NN (Hamming) uses the same {pre}binarised pixels and the same images.",
        "",
        "| train images | label nodes | label nodes P(label∣cell) | nearest code | nearest 5 codes | linear probe "
        "| k-NN1 pixels | k-NN3 pixels | k-NN1 raw pixels | learn s | within / between code overlap (± s.e.) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        raw = f"{r['raw_pixels_knn1']:.3f}" if "raw_pixels_knn1" in r else "—"
        lines.append(
            f"| {r['n_train']} | {r['acc_label_nodes']:.3f} | {r['acc_label_nodes_norm']:.3f} | "
            f"{r['acc_nearest_code']:.3f} | {r['acc_nearest_code5']:.3f} | {r['acc_linear_probe']:.3f} | "
            f"{r['pixels_knn1']:.3f} | {r['pixels_knn3']:.3f} | {raw} | {r['learn_s']:.1f} | "
            f"{r['overlap_within']:.2f} / {r['overlap_between']:.2f} (± {r['overlap_between_se']:.3f}) |"
        )
    lines += [
        "",
        "Paper's claim (sparsey.com): 91% at 200 images/class with 220 s single-thread learning (2 levels, "
        "16×24 skeletonised input, label readout). "
        + (
            "Measured above: smoke run — no verdict."  # --quick sizes only check the code
            if quick
            else "Measured above on the 10000 test images; where Sparsey trails k-NN on the same images, it does, "
            "and the label-node readout is well below the linear probe."
        ),
    ]
    return "\n".join(lines)
