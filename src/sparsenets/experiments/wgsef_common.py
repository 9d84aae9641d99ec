"""Shared driver of the WGSEF experiments: WGSEF and its baselines at matched kept groups, then compaction.

Methods (every sparse one ends with exactly k_l groups in each regularized layer, so all compacted models have the
same architecture and FLOPs):
- dense: SGD(momentum) for `epochs`, then `finetune_epochs` at the fine-tune lr (same schedule as the others);
- wgsef: Prox-SGD with W_{k,w} per coupled layer, λ ramped in, hard top-k, fine-tune with the mask held;
- group_lasso: the same with the group-lasso prox (SSL); its λ per layer is matched to WGSEF's band threshold at
  initialisation: λ_gl = λ·(m/k)·mean(r_init);
- magnitude: the dense model after `epochs`, top-k coupled groups by norm, fine-tune;
- tp_groupnorm: Torch-Pruning's GroupNormPruner regulariser during training, top-k by group norm, fine-tune.
"""

from __future__ import annotations

import copy
import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torch_pruning as tp
from safetensors.torch import load_file
from torch import nn

from sparsenets import data
from sparsenets.compact import compact, count_flops, count_params, load_compact, measure, save_compact
from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes
from sparsenets.groups import coupled_layouts
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.prox import PROXES, topk_multipliers
from sparsenets.runs import pool_map
from sparsenets.train import Callback, TensorBatches, Trainer, seed_everything
from sparsenets.train.metrics import evaluate_classifier

METHODS = ("dense", "wgsef", "group_lasso", "magnitude", "tp_groupnorm")
BASELINES = ("group_lasso", "magnitude", "tp_groupnorm")


def check_methods(methods: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The study's methods in canonical order; dense (the reference) and wgsef (the timed model) are required."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "dense" not in methods or "wgsef" not in methods:
        raise ConfigError(f"methods must name dense, wgsef and any of {list(BASELINES)}; got {list(methods)}")
    return tuple(m for m in METHODS if m in methods)


class _Regularize(Callback):
    """Torch-Pruning's GroupNorm sparse-training term, added to the gradients before each step."""

    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner

    def after_backward(self, state: Any) -> None:
        self.pruner.regularize(state.module)


def _fit(
    model: nn.Module,
    opt: Any,
    data: tuple[torch.Tensor, torch.Tensor],
    cfg: Any,
    seed: int,
    device: torch.device,
    save_dir: Path | None,
    method: str,
    phase: str,
    callbacks: tuple = (),
) -> None:
    """One training phase of a method: "train" (`cfg.epochs`, batches drawn with `seed`) or "tune" (the
    fine-tune, `cfg.finetune_epochs`, with seed + 1). With `save_dir`, checkpoint every epoch in
    `save_dir/train-METHOD-PHASE` and resume from it (a killed method restarts at its last epoch)."""
    epochs = cfg.epochs if phase == "train" else cfg.finetune_epochs
    batches = TensorBatches(*data, batch_size=cfg.batch_size, seed=seed if phase == "train" else seed + 1)
    steps = max(1, epochs * batches.steps_per_epoch)
    run_dir = _train_dir(save_dir, method, phase)

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(m(batch[0]), batch[1])

    Trainer(
        model,
        opt,
        batches,
        loss_fn,
        steps,
        callbacks=callbacks,
        device=device,
        progress=False,
        log_every=10**9,
        run_dir=run_dir,
        checkpoint_every=batches.steps_per_epoch if run_dir is not None else 0,
    ).fit()


def _train_dir(save_dir: Path | None, method: str, phase: str) -> Path | None:
    """Where one training phase of a method checkpoints (None: no save_dir, no checkpoints)."""
    return None if save_dir is None else save_dir / f"train-{method}-{phase}"


def _drop_checkpoints(save_dir: Path | None, method: str) -> None:
    """A recorded method needs its training checkpoints no more (full-width VGG: ~120 MB each)."""
    if save_dir is not None:
        for ckpt in save_dir.glob(f"train-{method}-*/checkpoints"):
            shutil.rmtree(ckpt, ignore_errors=True)


def _sgd(model: nn.Module, lr: float, wd: float = 0.0) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)


def _blocks(model: nn.Module, sample: torch.Tensor, keep: float, lam: float, penalty: str) -> list[ProxBlock]:
    layouts = coupled_layouts(model, sample.to(next(model.parameters()).device))
    blocks = []
    for lay in layouts:
        k = max(1, round(keep * lay.m))
        lam_b = lam
        if penalty == "group_lasso":
            lam_b = lam * lay.m / k * float(lay.norms().mean())
        blocks.append(ProxBlock(lay, k, lam_b, prox=PROXES.get(penalty)))
    return blocks


def _accuracy(model: nn.Module, test: tuple[torch.Tensor, torch.Tensor]) -> float:
    model.eval()
    acc = evaluate_classifier(model, *test)["accuracy"]
    model.train()
    return 100.0 * acc


def run_seed(
    cfg: Any,
    make_model: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    log: Callable[[str], None],
    device: torch.device | str = "cpu",
    save_dir: Path | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run each method of `cfg.methods` (or of `only`) not yet recorded for this seed; return every method's
    metrics recorded for it.

    Training and accuracy run on `device`; compaction and the output check on the CPU. The WGSEF model, masked
    and compacted, is written to `save_dir` (`save_compact` format) when given, for `measure_saved`. With
    `save_dir`, each finished method is recorded there in its own file (`method-NAME.json`; dense also leaves
    the snapshot the magnitude baseline starts from), so a killed seed resumes at its unfinished methods and
    several processes can run different methods of one seed at once (magnitude needs dense finished first).
    """
    device = torch.device(device)
    methods = [m for m in check_methods(cfg.methods) if only is None or m in only]
    sample = test[0][:1]
    out = _load_progress(save_dir, seed)
    if "magnitude" in methods and "magnitude" not in out and "dense" not in out and "dense" not in methods:
        raise SparsenetsError(f"seed {seed}: the magnitude baseline starts from dense; run dense first")
    if any(m in out for m in methods):
        log(f"  seed {seed}: resuming after {', '.join(m for m in methods if m in out)}")
    steps_per_epoch = TensorBatches(*train, batch_size=cfg.batch_size, seed=seed).steps_per_epoch

    def finish(name: str, model: nn.Module, opt: ProxOptimizer | None, t0: float, extra: dict) -> nn.Module:
        if opt is not None:
            extra["kept_before_select"] = opt.kept()
            extra["accuracy_before_select"] = _accuracy(model, test)
            # every method fine-tunes with the same fresh optimizer as the magnitude baseline
            opt.hold_mask(_sgd(model, cfg.finetune_lr, cfg.weight_decay))
            extra["accuracy_after_select"] = _accuracy(model, test)
            extra["k"] = [b.k for b in opt.blocks]
            _fit(model, opt, train, cfg, seed, device, save_dir, name, "tune")
            extra["kept"] = opt.kept()
        model.cpu()  # compaction and latency are CPU measurements
        small = compact(model.eval(), sample)
        with torch.no_grad():
            diff = float((small(test[0][:256]) - model(test[0][:256])).abs().max())
        extra.update(
            accuracy=_accuracy(model, test),
            accuracy_compact=_accuracy(small, test),
            max_abs_diff=diff,
            params=count_params(small),
            flops=count_flops(small, sample),
            seconds=time.perf_counter() - t0,
        )
        out[name] = extra
        log(
            f"  seed {seed} {name}: acc {extra['accuracy']:.2f} flops {extra['flops']:.3g} "
            f"kept {extra.get('kept', '-')} ({extra['seconds']:.0f}s)"
        )
        return small

    # dense (its state after `epochs` seeds the magnitude baseline)
    snapshot = None
    if "dense" in out:
        if "magnitude" in methods and "magnitude" not in out:
            snapshot = _load_snapshot(make_model, save_dir)
    elif "dense" in methods:
        t0 = time.perf_counter()
        seed_everything(seed)
        dense = make_model()
        _fit(
            dense, _sgd(dense, cfg.lr, cfg.weight_decay), train, cfg, seed, device, save_dir, "dense", "train"
        )
        snapshot = copy.deepcopy(dense)
        opt = _sgd(dense, cfg.finetune_lr, cfg.weight_decay)
        _fit(dense, opt, train, cfg, seed, device, save_dir, "dense", "tune")
        acc = _accuracy(dense, test)
        dense.cpu()
        out["dense"] = {
            "accuracy": acc,
            "params": count_params(dense),
            "flops": count_flops(dense, sample),
            "seconds": time.perf_counter() - t0,
        }
        log(f"  seed {seed} dense: acc {out['dense']['accuracy']:.2f} ({out['dense']['seconds']:.0f}s)")
        if save_dir is not None:
            _save_snapshot(snapshot, save_dir)
        _save_progress(save_dir, seed, "dense", out)
        _drop_checkpoints(save_dir, "dense")

    # proximal methods
    for penalty in [m for m in ("wgsef", "group_lasso") if m in methods and m not in out]:
        t0 = time.perf_counter()
        seed_everything(seed)
        model = make_model()
        lam = cfg.lam if penalty == "wgsef" else cfg.lam_group_lasso
        opt = ProxOptimizer(
            _sgd(model, cfg.lr, cfg.weight_decay),  # the dense run's optimizer; the penalty comes on top
            _blocks(model, sample, cfg.keep, lam, penalty),
            select=topk_multipliers,
            warmup_steps=int(cfg.warmup_epochs * steps_per_epoch),
        )
        _fit(model, opt, train, cfg, seed, device, save_dir, penalty, "train")
        small = finish(penalty, model, opt, t0, {})
        if penalty == "wgsef" and save_dir is not None:
            save_compact(model, save_dir / "wgsef-masked")
            save_compact(small, save_dir / "wgsef-compact")
        _save_progress(save_dir, seed, penalty, out)  # after the saved pair: a recorded wgsef always has it
        _drop_checkpoints(save_dir, penalty)

    if "magnitude" in methods and "magnitude" not in out:
        _magnitude(cfg, snapshot, sample, train, test, seed, device, finish, save_dir)
        _save_progress(save_dir, seed, "magnitude", out)
        _drop_checkpoints(save_dir, "magnitude")
    if "tp_groupnorm" in methods and "tp_groupnorm" not in out:
        _tp_groupnorm(cfg, make_model, sample, train, seed, device, finish, save_dir)
        _save_progress(save_dir, seed, "tp_groupnorm", out)
        _drop_checkpoints(save_dir, "tp_groupnorm")
    return out


_LEGACY_PROGRESS = "methods.json"  # one file per seed, written before session 7: still read
_SNAPSHOT = "dense-snapshot.safetensors"
_DENSE_RECORD = "method-dense.json (methods.json in runs from before session 7)"


def _progress_files(save_dir: Path) -> list[Path]:
    legacy = save_dir / _LEGACY_PROGRESS
    return ([legacy] if legacy.exists() else []) + sorted(save_dir.glob("method-*.json"))


def _load_progress(save_dir: Path | None, seed: int) -> dict[str, Any]:
    """{"seed": seed, method: metrics} for the methods a run of this seed already finished."""
    out: dict[str, Any] = {"seed": seed}
    for path in [] if save_dir is None or not save_dir.exists() else _progress_files(save_dir):
        try:
            got = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise SparsenetsError(
                f"cannot read the progress file {path} ({err}); delete it to re-run that part of seed {seed}"
            ) from None
        if not isinstance(got, dict) or got.get("seed") != seed:
            found = got.get("seed") if isinstance(got, dict) else None
            raise SparsenetsError(f"{path} belongs to seed {found}, not {seed}; delete it or the folder")
        out.update({k: v for k, v in got.items() if k != "seed"})
    return out


def _save_progress(save_dir: Path | None, seed: int, method: str, out: dict[str, Any]) -> None:
    """Record one finished method in its own file (atomic), so parallel jobs of one seed never share a file."""
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"seed": seed, method: out[method]}, indent=2, default=float)
        atomic_write_bytes(save_dir / f"method-{method}.json", body.encode())


def _save_snapshot(model: nn.Module, save_dir: Path) -> None:
    """The dense model after `epochs` (the magnitude baseline's start), for a resumed seed."""
    save_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state, save_dir / _SNAPSHOT)


def _load_snapshot(make_model: Callable[[], nn.Module], save_dir: Path | None) -> nn.Module:
    path = None if save_dir is None else save_dir / _SNAPSHOT
    if path is None or not path.exists():
        raise SparsenetsError(
            f"dense is recorded as finished but its snapshot {path} is missing; delete {_DENSE_RECORD} to re-run it"
        )
    model = make_model()
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as err:  # a truncated file or another architecture: either way, re-run dense
        raise SparsenetsError(
            f"cannot load the dense snapshot {path} ({err}); delete it and {_DENSE_RECORD}"
        ) from None
    return model


def _magnitude(
    cfg: Any,
    snapshot: nn.Module,
    sample: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    device: torch.device,
    finish: Callable[..., nn.Module],
    save_dir: Path | None = None,
) -> None:
    """Magnitude pruning of the dense snapshot (top-k coupled groups by norm), then the common fine-tune."""
    t0 = time.perf_counter()
    opt = ProxOptimizer(
        _sgd(snapshot, cfg.finetune_lr, cfg.weight_decay),
        _blocks(snapshot, sample, cfg.keep, 0.0, "none"),
        select=topk_multipliers,
    )
    extra = {"accuracy_before_select": _accuracy(snapshot, test)}
    opt.hold_mask()
    extra["accuracy_after_select"] = _accuracy(snapshot, test)
    _fit(snapshot, opt, train, cfg, seed, device, save_dir, "magnitude", "tune")
    extra["kept"] = opt.kept()
    finish("magnitude", snapshot, None, t0, extra)


def _tp_groupnorm(
    cfg: Any,
    make_model: Callable[[], nn.Module],
    sample: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    device: torch.device,
    finish: Callable[..., nn.Module],
    save_dir: Path | None = None,
) -> None:
    """Torch-Pruning's GroupNorm sparse training, then the same top-k and fine-tune."""
    t0 = time.perf_counter()
    seed_everything(seed)
    model = make_model()
    last = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
    pruner = tp.pruner.GroupNormPruner(
        model,
        sample,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        reg=cfg.tp_reg,
        ignored_layers=[last],
    )
    opt = _sgd(model, cfg.lr, cfg.weight_decay)
    _fit(model, opt, train, cfg, seed, device, save_dir, "tp_groupnorm", "train", (_Regularize(pruner),))
    opt = ProxOptimizer(
        _sgd(model, cfg.lr, cfg.weight_decay),
        _blocks(model, sample, cfg.keep, 0.0, "none"),
        select=topk_multipliers,
    )
    finish("tp_groupnorm", model, opt, t0, {})


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed means and standard deviations of accuracy per method, plus FLOPs/params and speedups."""
    summary: dict[str, Any] = {}
    for name in [m for m in METHODS if m in per_seed[0]]:
        accs = [r[name]["accuracy"] for r in per_seed]
        summary[name] = {
            "accuracy_mean": statistics.mean(accs),
            "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "flops": per_seed[0][name]["flops"],
            "params": per_seed[0][name]["params"],
        }
        if name != "dense":
            summary[name]["kept"] = per_seed[0][name]["kept"]
            summary[name]["max_abs_diff"] = max(r[name]["max_abs_diff"] for r in per_seed)
            if "kept_before_select" in per_seed[0][name]:
                summary[name]["kept_before_select"] = [r[name]["kept_before_select"] for r in per_seed]
                summary[name]["accuracy_before_select_mean"] = statistics.mean(
                    r[name]["accuracy_before_select"] for r in per_seed
                )
                summary[name]["accuracy_after_select_mean"] = statistics.mean(
                    r[name]["accuracy_after_select"] for r in per_seed
                )
    shared = set.intersection(
        *(set(r["measure"]) for r in per_seed)
    )  # seeds measured by older code lack some
    for key in (k for k in per_seed[0]["measure"] if k in shared):
        summary.setdefault("measure", {})[key] = statistics.median(r["measure"][key] for r in per_seed)
    return summary


def paired_differences(
    per_seed: list[dict[str, Any]], baselines: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """WGSEF − baseline accuracy per seed (same seed, same batches), as (mean, sd) over seeds, per baseline.

    Args:
        per_seed: one record per seed with each method's "accuracy" (percent).
        baselines: methods to compare; those missing from any seed are left out.
    """
    out = {}
    for name in baselines:
        if all(name in r and "wgsef" in r for r in per_seed):
            d = [r["wgsef"]["accuracy"] - r[name]["accuracy"] for r in per_seed]
            out[name] = (statistics.fmean(d), statistics.stdev(d) if len(d) > 1 else 0.0)
    return out


def plot_and_report(
    ctx: Any,
    cfg: Any,
    summary: dict[str, Any],
    per_seed: list[dict[str, Any]],
    layer_sizes: list[int],
    title: str,
    claim: str,
    flops_target: float,
    drop_target: float,
) -> str:
    """Figures (accuracy vs FLOPs, kept groups per layer) and the Markdown fragment for the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    methods = [m for m in METHODS if m in summary]
    baselines = [m for m in BASELINES if m in summary]
    for name in methods:
        accs = [r[name]["accuracy"] for r in per_seed]
        flops = [r[name]["flops"] for r in per_seed]
        ax.errorbar(
            statistics.mean(flops),
            statistics.mean(accs),
            yerr=summary[name]["accuracy_std"],
            fmt="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per image (compacted model)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{title}: accuracy vs FLOPs ({len(per_seed)} seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "accuracy_vs_flops")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    idx = list(range(len(layer_sizes)))
    band = [statistics.mean(r["wgsef"]["kept_before_select"][i] for r in per_seed) for i in idx]
    ax.bar([i - 0.3 for i in idx], layer_sizes, width=0.2, label="dense (m)")
    if "group_lasso" in summary:
        gl_band = [statistics.mean(r["group_lasso"]["kept_before_select"][i] for r in per_seed) for i in idx]
        ax.bar([i - 0.1 for i in idx], gl_band, width=0.2, label="group lasso, nonzero before top-k")
    ax.bar([i + 0.1 for i in idx], band, width=0.2, label="WGSEF, nonzero before top-k")
    ax.bar([i + 0.3 for i in idx], summary["wgsef"]["kept"], width=0.2, label="kept = k (after top-k)")
    ax.set_yscale("log")
    ax.set_xlabel("regularized layer")
    ax.set_ylabel("groups (filters / neurons)")
    ax.set_title(f"{title}: kept groups per layer")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "kept_per_layer")

    d = summary["dense"]
    ms = summary["measure"]
    lines = [
        f"### {title}",
        "",
        f"Config: keep ratio {cfg.keep} per layer, λ = {cfg.lam} (WGSEF), {cfg.epochs} epochs + {cfg.finetune_epochs} "
        f"fine-tune, batch {cfg.batch_size}, lr {cfg.lr}/{cfg.finetune_lr}, {len(per_seed)} seeds, "
        f"{cfg.train_limit or 'all'} training images; trained on {summary.get('device', 'cpu')}, latency measured "
        f"on the CPU with {cfg.threads} thread(s).",
        "",
        "| method | accuracy (mean ± sd) | Δ vs dense (pt) | FLOPs | FLOPs ÷ | params | kept groups per layer |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in methods:
        s = summary[name]
        lines.append(
            f"| {name} | {s['accuracy_mean']:.2f} ± {s['accuracy_std']:.2f} | "
            f"{s['accuracy_mean'] - d['accuracy_mean']:+.2f} | {s['flops']:.3g} | {d['flops'] / s['flops']:.2f} | "
            f"{s['params']:.0f} | {s.get('kept', layer_sizes)} |"
        )
    w = summary["wgsef"]
    gl = summary.get("group_lasso")
    paired = paired_differences(per_seed, baselines)
    lines += [
        "",
        *(
            [
                "WGSEF − baseline, paired per seed (mean ± sd, pt): "
                + "; ".join(f"{n} {m:+.2f} ± {sd:.2f}" for n, (m, sd) in paired.items())
                + ".",
            ]
            if paired
            else []
        ),
        "Before the final hard top-k (nonzero groups per layer, per seed): "
        f"WGSEF {w['kept_before_select']}"
        + (f"; group lasso {gl['kept_before_select']}" if gl else "")
        + f"; k = {w['kept']}.",
        f"Accuracy before / after the hard selection (before fine-tuning): WGSEF "
        f"{w['accuracy_before_select_mean']:.2f} / {w['accuracy_after_select_mean']:.2f}"
        + (
            f"; group lasso {gl['accuracy_before_select_mean']:.2f} / {gl['accuracy_after_select_mean']:.2f}."
            if gl
            else "."
        ),
        "",
        "Compaction (WGSEF model, median over seeds; CPU):",
        "",
        "| | dense | compacted | ratio |",
        "|---|---|---|---|",
        f"| params | {ms['params_dense']:.0f} | {ms['params_compact']:.0f} | {ms['params_reduction']:.2f}× |",
        f"| FLOPs | {ms['flops_dense']:.3g} | {ms['flops_compact']:.3g} | {ms['flops_reduction']:.2f}× |",
        f"| latency batch 1 (ms) | {ms['latency_b1_dense'] * 1e3:.2f} | {ms['latency_b1_compact'] * 1e3:.2f} | "
        f"{ms['speedup_b1']:.2f}× |",
        f"| latency batch 64 (ms) | {ms['latency_b64_dense'] * 1e3:.2f} | {ms['latency_b64_compact'] * 1e3:.2f} | "
        f"{ms['speedup_b64']:.2f}× |",
        *(
            [
                f"| latency batch 64, both channels-last (ms) | {ms['latency_cl_b64_dense'] * 1e3:.2f} | "
                f"{ms['latency_cl_b64_compact'] * 1e3:.2f} | {ms['speedup_cl_b64']:.2f}× |",
                f"| batch 64, each model in its faster layout | | | {ms['speedup_best_b64']:.2f}× |",
            ]
            if "speedup_best_b64" in ms
            else []
        ),
        "",
        "Latency rows: NCHW, the PyTorch default, for both models; channels-last rows time copies of both models "
        "in that layout; the verdicts below give both NCHW and each model in its faster layout.",
        "",
        f"Max |compacted − masked| output over all sparse runs: "
        f"{max(summary[n]['max_abs_diff'] for n in methods if n != 'dense'):.2e}.",
        "",
    ]
    flops_red = d["flops"] / w["flops"]
    drop = d["accuracy_mean"] - w["accuracy_mean"]
    best_base = max((summary[n]["accuracy_mean"] for n in baselines), default=float("nan"))
    lines += [
        "| claim | target | measured | verdict |",
        "|---|---|---|---|",
        f"| paper: {claim} | — | see rows below | (no paper table numbers available; judged against our baselines) |",
        f"| FLOPs reduction | ≥ {flops_target:g}× | {flops_red:.2f}× | {'met' if flops_red >= flops_target else 'not met'} |",
        f"| accuracy drop vs dense | ≤ {drop_target:g} pt | {drop:+.2f} pt | {'met' if drop <= drop_target else 'not met'} |",
        f"| WGSEF ≥ every baseline at the same FLOPs | ≥ {best_base:.2f} | {w['accuracy_mean']:.2f} | "
        f"{'met' if w['accuracy_mean'] >= best_base else 'not met' if baselines else 'no baseline run'} |",
        *(
            f"| batch-64 speedup ≥ 0.7 × FLOPs reduction, {how} | ≥ {0.7 * ms['flops_reduction']:.2f}× | "
            f"{ms[key]:.2f}× | {'met' if ms[key] >= 0.7 * ms['flops_reduction'] else 'not met'} |"
            for key, how in (
                ("speedup_b64", "both NCHW"),
                ("speedup_best_b64", 'each model in its faster layout (`compact(memory_format="auto")`)'),
            )
            if key in ms
        ),
        "",
    ]
    return "\n".join(lines)


def _seed_job(
    args: tuple[Any, Callable[[], nn.Module], str, int, str, Path, tuple[str, ...]],
) -> dict[str, Any]:
    """Process-pool entry: load the data and run some methods (`only`) of one seed."""
    cfg, make_model, dataset, seed, device, save_dir, only = args
    torch.set_num_threads(cfg.threads)
    train, test = _load(dataset, cfg)
    return run_seed(cfg, make_model, train, test, seed, _print, device, save_dir, only)


def measure_saved(save_dir: Path, sample: torch.Tensor, repeat: int) -> dict[str, float]:
    """Params, FLOPs and CPU latency of the masked vs compacted WGSEF model written by `run_seed`.

    Args:
        save_dir: the seed's folder holding `wgsef-masked.*` and `wgsef-compact.*`.
        sample: (1, C, H, W) one input; batches of 1 and 64 are made from it.
        repeat: timed forward passes per model and batch size.
    """
    return measure(
        load_compact(save_dir / "wgsef-masked"),
        load_compact(save_dir / "wgsef-compact"),
        sample,
        repeat=repeat,
    )


def _print(message: str) -> None:
    print(message, flush=True)


def _load(
    dataset: str, cfg: Any
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    train, test = data.load(dataset, split="train"), data.load(dataset, split="test")
    tr = (train.x[: cfg.train_limit or None], train.y[: cfg.train_limit or None])
    te = (test.x[: cfg.test_limit or None], test.y[: cfg.test_limit or None])
    return tr, te


def _finished_seeds(path: Path) -> dict[int, dict[str, Any]]:
    """Seeds already in per_seed.json (a resumed run skips them)."""
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path} is unreadable; delete it to re-run every seed") from e
    return {r["seed"]: r for r in rows if "seed" in r}


def run_study(
    cfg: Any,
    ctx: Any,
    dataset: str,
    make_model: Callable[[], nn.Module],
    sizes: list[int],
    title: str,
    claim: str,
    flops_target: float,
    drop_target: float,
) -> dict[str, Any]:
    """One WGSEF study: every method for each seed on `dataset`, then tables, figures and the claims table.

    Seeds already in the run folder's per_seed.json are reused, and so are the methods a killed run recorded
    for the others (`seed-N/method-NAME.json`). Every (seed, method) pair is one job; magnitude (it starts from
    dense) waits only for its own seed's dense job. With `cfg.workers` > 1 the jobs run in parallel processes
    (`make_model` must then be picklable) — on a GPU, where each method's steps are launch-bound, that keeps the
    device busy.

    Returns:
        The summary over seeds (also written to summary.json; per-seed results to per_seed.json).
    """
    check_methods(cfg.methods)  # before any training
    torch.set_num_threads(cfg.threads)
    seeds = [ctx.seed + i for i in range(cfg.seeds)]
    done = _finished_seeds(ctx.dir / "per_seed.json")
    todo = [s for s in seeds if s not in done]
    methods = check_methods(cfg.methods)
    # magnitude (a short fine-tune) last, each waiting only for its own seed's dense run
    order = [(s, m) for s in todo for m in methods if m != "magnitude"]
    order += [(s, m) for s in todo for m in methods if m == "magnitude"]
    after = [
        [order.index((s, "dense"))] if m == "magnitude" and (s, "dense") in order else [] for s, m in order
    ]
    jobs = [(cfg, make_model, dataset, s, str(ctx.device), ctx.dir / f"seed-{s}", (m,)) for s, m in order]
    for _ in pool_map(_seed_job, jobs, cfg.workers, after):
        pass  # each job records its method in its seed folder
    for s in todo:
        done[s] = _load_progress(ctx.dir / f"seed-{s}", s)
        ctx.save_json("per_seed.json", [done[t] for t in seeds if t in done])
    # latency after all training, one model at a time, so parallel seeds do not load the timed core
    unmeasured = [s for s in seeds if "measure" not in done[s]]
    if unmeasured:
        sample = _load(dataset, cfg)[1][0][:1]
        for s in unmeasured:
            done[s]["measure"] = measure_saved(ctx.dir / f"seed-{s}", sample, cfg.latency_repeat)
            ctx.save_json("per_seed.json", [done[t] for t in seeds])
    per_seed = [done[s] for s in seeds]
    summary = summarize(per_seed)
    summary["device"] = str(ctx.device)
    ctx.save_json("summary.json", summary)
    ctx.write_report(
        plot_and_report(ctx, cfg, summary, per_seed, sizes, title, claim, flops_target, drop_target)
    )
    return summary
