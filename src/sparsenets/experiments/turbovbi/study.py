"""A Turbo-VBI study: per seed the dense warm-up, then every arm trained from it and swept over its pruning
threshold; the matched-error selection; compaction, FLOPs and latency of the chosen models; the report.

Files in the run folder (a killed study resumes at what is missing): `seed-S/dense.safetensors`,
`seed-S/ARM.safetensors` (the trained model) and `seed-S/ARM.json` (its sweep), `per_seed.json` (the chosen
points with FLOPs and latency), `summary.json`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from sparsenets.compact import compact, measure
from sparsenets.errors import SparsenetsError
from sparsenets.experiments.turbovbi.arms import Job, get_arm
from sparsenets.experiments.turbovbi.common import (
    MAIN_ARMS,
    TurboStudyConfig,
    arm_names,
    check_study,
    error,
    fit_dense,
    load_splits,
    point_metrics,
    select_matched,
)
from sparsenets.experiments.turbovbi.report import write_report
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes
from sparsenets.runs import RunContext, experiment, pool_map


@dataclass(frozen=True)
class StudySpec:
    """What one Turbo-VBI experiment fixes.

    Attributes:
        dataset: "mnist" or "fashion-mnist".
        model: the model class (called with no arguments; picklable for worker processes).
        title: "net / data" for tables and figures.
        anchors: {"dense": max dense test error %, "svd_err": Sparse VD's published error %, "svd_comp": its
            published compression ×}; empty for the Fashion-MNIST stand-in (relative criteria only).
        latency: measure batch-64 CPU latency of the compacted models (the spec asks it of LeNet-5).
    """

    dataset: str
    model: Callable[[], nn.Module]
    title: str
    anchors: dict[str, float]
    latency: bool = False


def _save_state(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state, path)


def _load_state(model: nn.Module, path: Path) -> nn.Module:
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as err:  # truncated or from another architecture: re-run that arm
        raise SparsenetsError(
            f"cannot load {path} ({err}); delete it and its .json to re-run that arm"
        ) from None
    return model


def _job(
    cfg: TurboStudyConfig, spec: StudySpec, seed: int, device: str, folder: Path
) -> tuple[Job, Any, Any]:
    train, val, test = load_splits(spec.dataset, cfg)
    dense_path = folder / "dense.safetensors"
    state = load_file(str(dense_path)) if dense_path.exists() else {}
    return Job(cfg, spec.model, state, train, train[0][:1], seed, device), val, test


def _dense_job(args: tuple[TurboStudyConfig, StudySpec, int, str, Path]) -> None:
    """Train (or find) the dense warm-up of one seed: every arm's start and the dense arm itself."""
    cfg, spec, seed, device, folder = args
    if (folder / "dense.safetensors").exists():
        return
    job, _, _ = _job(cfg, spec, seed, device, folder)
    torch.manual_seed(seed)
    model = fit_dense(spec.model(), job.train, cfg, seed, job.epochs(cfg.warmup_epochs), device)
    folder.mkdir(parents=True, exist_ok=True)
    _save_state(model, folder / "dense.safetensors")


def _study_job(args: tuple[Any, ...]) -> dict[str, Any]:
    """Process-pool entry: ("dense", ...) trains the warm-up (and records it as the dense arm's sweep);
    ("arm", ...) runs `_arm_job`."""
    if args[0] == "dense":
        _dense_job(args[1:])
        cfg, spec, seed, device, folder = args[1:]
        return _arm_job((cfg, spec, seed, "dense", device, folder))
    return _arm_job(args[1:])


def _arm_job(args: tuple[TurboStudyConfig, StudySpec, int, str, str, Path]) -> dict[str, Any]:
    """Train one arm of one seed from the dense warm-up and sweep its threshold; cached in the seed folder."""
    cfg, spec, seed, name, device, folder = args
    record_path = folder / f"{name}.json"
    if record_path.exists():
        return json.loads(record_path.read_text())
    job, val, test = _job(cfg, spec, seed, device, folder)
    arm = get_arm(name)
    state_path = folder / f"{name}.safetensors"
    if state_path.exists():
        trained = _load_state(arm.rebuild(job), state_path)
    else:
        torch.manual_seed(seed)
        trained = arm.train(job)
        _save_state(trained, state_path)
    points = []
    for t in arm.thresholds:
        points.append({"threshold": t, **point_metrics(arm.prune(trained, t, job), val, test)})
    record = {
        "arm": name,
        "label": arm.label,
        "seed": seed,
        "unpruned": {"val_err": error(trained, val), "test_err": error(trained, test)},
        "points": points,
    }
    atomic_write_bytes(record_path, json.dumps(record, indent=1, default=float).encode())
    return record


PRIORITY = ("dense", "turbo-mrf2d", "vbi-iid", "sparse-vd", "magnitude", "ard", "bc-ghs", "turbo-chain")


def _priority(arm: str) -> int:
    """Job order of an arm within a seed: the claim's arms first, then the rest (group lasso, p sweeps)."""
    return PRIORITY.index(arm) if arm in PRIORITY else len(PRIORITY)


def _measure(model: nn.Module, dense: nn.Module, example: torch.Tensor, spec: StudySpec, repeat: int) -> dict:
    """Compacted params and FLOPs vs dense (and batch-64 CPU latency when the study asks for it)."""
    model, dense = model.cpu().eval(), dense.cpu().eval()
    small = compact(model, example)
    if spec.latency:
        got = measure(dense, small, example, batches=(64,), repeat=repeat)
    else:
        from sparsenets.compact import count_flops, count_params

        got = {"flops_dense": count_flops(dense, example), "flops_compact": count_flops(small, example),
               "params_dense": float(count_params(dense)), "params_compact": float(count_params(small))}  # fmt: skip
        got["flops_reduction"] = got["flops_dense"] / got["flops_compact"]
    return got


def chosen_model(
    cfg: TurboStudyConfig, spec: StudySpec, seed: int, arm_name: str, t: float, folder: Path
) -> Any:
    """One trained arm of a finished seed, rebuilt from `folder/ARM.safetensors` and pruned at threshold `t`.

    Returns:
        (model, job): the pruned, fine-tuned nn.Module on the CPU (masks applied, not yet compacted) and the
        seed's Job (config, model name, dense state, training data) it was rebuilt with.
    """
    job, _, _ = _job(cfg, spec, seed, "cpu", folder)
    arm = get_arm(arm_name)
    trained = _load_state(arm.rebuild(job), folder / f"{arm_name}.safetensors")
    return arm.prune(trained, t, job), job


def run_study(cfg: TurboStudyConfig, ctx: RunContext, spec: StudySpec) -> dict[str, Any]:
    """Every arm for each seed, the matched-error selection, compaction/latency, then tables and figures.

    Returns:
        The summary (also summary.json): per arm the mean ± std over seeds of the chosen points' metrics.
    """
    check_study(cfg)
    device = str(ctx.device)
    seeds = [ctx.seed + i for i in range(cfg.seeds)]
    arms = arm_names(cfg)
    folders = {s: ctx.subdir(f"seed-{s}") for s in seeds}
    jobs: list[tuple[Any, ...]] = []
    after: list[list[int]] = []
    for i, s in enumerate(seeds):  # seed by seed: its dense, then its arms, the claim's first (PRIORITY)
        dense_index = len(jobs)
        jobs.append(("dense", cfg, spec, s, device, folders[s]))
        after.append([])
        for a in sorted(arms, key=_priority):
            if a != "dense" and (a in MAIN_ARMS or i < cfg.peer_seeds):
                jobs.append(("arm", cfg, spec, s, a, device, folders[s]))
                after.append([dense_index])  # an arm starts from its seed's dense warm-up
    records: dict[int, dict[str, dict[str, Any]]] = {s: {} for s in seeds}
    for _, rec in pool_map(_study_job, jobs, cfg.workers, after):
        records[rec["seed"]][rec["arm"]] = rec
        ctx.log(f"seed {rec['seed']} {rec['arm']}: {len(rec['points'])} sweep points")
    done_path = ctx.dir / "per_seed.json"
    per_seed = json.loads(done_path.read_text()) if done_path.exists() else {}
    example = load_splits(spec.dataset, cfg)[2][0][:1]
    for s in seeds:
        if str(s) in per_seed:
            continue
        chosen = select_matched(records[s], cfg.band)
        dense, _ = chosen_model(cfg, spec, s, "dense", 0.0, folders[s])
        for arm, point in chosen.items():
            model, _ = chosen_model(cfg, spec, s, arm, point["threshold"], folders[s])
            point["measure"] = _measure(model, dense, example, spec, cfg.latency_repeat)
        per_seed[str(s)] = chosen
        ctx.save_json("per_seed.json", per_seed)
    summary = write_report(ctx, cfg, spec, per_seed, records, functools.partial(chosen_model, cfg, spec))
    ctx.save_json("summary.json", summary)
    return summary


def register_study(
    name: str, config_cls: type, spec: StudySpec, quick: dict[str, Any], description: str
) -> None:
    """Register the Turbo-VBI experiment `name` as `run_study(cfg, ctx, spec)`."""

    def run(cfg: Any, ctx: RunContext) -> dict[str, Any]:
        return run_study(cfg, ctx, spec)

    run.__doc__ = f"Every arm for each seed on {spec.title}; matched-error tables, heat maps; the summary."
    experiment(name, config_cls, quick=quick, description=description, check=check_study)(run)
