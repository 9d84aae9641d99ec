"""`compare`: every registered compression adapter on LeNet-5-Caffe / MNIST and a VGG-style net / Fashion-MNIST,
at FLOPs budgets of about 2×, 4× and 8×, several seeds; one record per compressed model, one table, two Pareto
plots. Every (model, seed) trains dense once; every (model, seed, method, budget) is one resumable job."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from sparsenets import data
from sparsenets.compare import (
    CompressionRecord,
    CompressionTask,
    TrainRecipe,
    adapters,
    compress,
    keep_for_flops,
    measure_budget,
    train_dense,
)
from sparsenets.errors import ConfigError
from sparsenets.experiments.compare.tables import write_tables
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes
from sparsenets.models import VGG16BN, LeNet5
from sparsenets.runs import PoolConfig, RunContext, experiment, pool_map

MODELS = {  # name → (model class, width, data set, label)
    "lenet5": (LeNet5, 1.0, "mnist", "LeNet-5-Caffe / MNIST"),
    "vgg": (VGG16BN, 0.125, "fashion-mnist", "VGG-16-BN / Fashion-MNIST"),  # width: cfg.vgg_width
}


@dataclass
class Config(PoolConfig, TrainRecipe):
    """Hyper-parameters of `compare`: the shared `TrainRecipe` (epochs, sparse/fine-tune epochs, SGD) plus these
    (docs/methods/compare.md).

    Attributes:
        models: which of MODELS to run.
        methods: adapter names (empty: every registered adapter).
        reductions: FLOPs budgets as reduction factors; each becomes the per-layer keep ratio that gives it.
        seeds: seeds per model (the run's seed up).
        vgg_seeds: seeds for the VGG model (it costs more; at most `seeds`).
        train_limit, test_limit: images used (0: all).
        vgg_width, vgg_train_limit: the VGG model's width multiplier and training images (0: all).
        wgsef_lam, group_lasso_lam, tp_reg, imp_rounds: per-method hyper-parameters.
        latency_repeat: timed forward passes per model and batch size.
    """

    models: tuple[str, ...] = ("lenet5", "vgg")
    seeds: int = 3
    vgg_seeds: int = 1
    methods: tuple[str, ...] = ()  # empty: every registered adapter
    train_limit: int = 0
    test_limit: int = 0
    reductions: tuple[float, ...] = (2.0, 4.0, 8.0)
    vgg_width: float = 0.125
    vgg_train_limit: int = 10000
    latency_repeat: int = 30
    wgsef_lam: float = 0.005  # the per-method hyper-parameters follow
    group_lasso_lam: float = 0.003
    tp_reg: float = 1e-3
    imp_rounds: int = 1


QUICK = {  # the main job's smoke run: LeNet-5 only, one seed, 4k images, one epoch per phase
    "models": ("lenet5",),
    "seeds": 1,
    "epochs": 1,
    "sparse_epochs": 1,
    "finetune_epochs": 1,
    "train_limit": 4096,
    "test_limit": 2000,
    "latency_repeat": 10,
}


def _task(cfg: Config, name: str, device: str, progress: bool = True) -> CompressionTask:
    cls, width, dataset, _ = MODELS[name]
    width = cfg.vgg_width if name == "vgg" else width
    train, test = data.load(dataset, split="train"), data.load(dataset, split="test")
    limit = cfg.vgg_train_limit if name == "vgg" and cfg.vgg_train_limit else cfg.train_limit
    n, m = limit or len(train.y), cfg.test_limit or len(test.y)
    recipe = {f: getattr(cfg, f) for f in TrainRecipe.__dataclass_fields__}
    options = {"wgsef_lam": cfg.wgsef_lam, "group_lasso_lam": cfg.group_lasso_lam, "tp_reg": cfg.tp_reg}
    return CompressionTask(
        **recipe, model_name=name, dataset=dataset, make_model=functools.partial(cls, width=width),
        train=(train.x[:n], train.y[:n]), test=(test.x[:m], test.y[:m]), device=device, progress=progress,
        options={**options, "imp_rounds": cfg.imp_rounds}, latency_repeat=cfg.latency_repeat,
    )  # fmt: skip


def _dense_job(args: tuple[Config, str, int, str, Path]) -> None:
    """Train (or find) the dense model of one (model, seed) in its folder."""
    cfg, name, seed, device, folder = args
    if (folder / "dense.json").exists():
        return
    state, init, acc = train_dense(_task(cfg, name, device), seed)
    atomic_save_safetensors({k: v.contiguous() for k, v in state.items()}, folder / "dense.safetensors")
    atomic_save_safetensors({k: v.contiguous() for k, v in init.items()}, folder / "init.safetensors")
    atomic_write_bytes(folder / "dense.json", json.dumps({"accuracy": acc, "seed": seed}).encode())


def _compress_job(args: tuple[Config, str, int, str, float, str, Path]) -> dict[str, Any]:
    """One (model, seed, method, keep) compression; its record file makes it resumable."""
    cfg, name, seed, method, keep, device, folder = args
    path = folder / f"{method}-keep{keep:g}.json"
    if path.exists():
        return json.loads(path.read_text())
    dense = (
        load_file(str(folder / "dense.safetensors")),
        load_file(str(folder / "init.safetensors")),
        json.loads((folder / "dense.json").read_text())["accuracy"],
    )
    record = compress(method, _task(cfg, name, device), keep, seed, dense).to_dict()
    atomic_write_bytes(path, json.dumps(record, indent=1).encode())
    return record


@functools.lru_cache(maxsize=8)
def _keeps_for(name: str, width: float, reductions: tuple[float, ...]) -> tuple[float, ...]:
    """Per-layer keep ratios that give each FLOPs reduction on model `name` (cached: check and run share it)."""
    cls, _, _, _ = MODELS[name]
    make, example = functools.partial(cls, width=width), torch.zeros(1, 1, 28, 28)
    keeps = tuple(keep_for_flops(make, example, r) for r in reductions)
    if len(set(keeps)) < len(keeps) or min(keeps) <= 0.002:
        raise ConfigError(
            f"compare: budgets {reductions} on {name} give keep ratios {keeps}: some keep no group"
        )
    return keeps


def _keeps(cfg: Config) -> dict[str, list[float]]:
    return {
        n: list(_keeps_for(n, cfg.vgg_width if n == "vgg" else 1.0, tuple(cfg.reductions)))
        for n in cfg.models
    }


def _check(cfg: Config) -> list[str]:
    """The methods to run; one clear error for an unknown model or method or a budget that is no budget."""
    known = adapters()
    unknown = [m for m in cfg.models if m not in MODELS]
    if unknown or not cfg.models:
        raise ConfigError(
            f"compare: unknown models {unknown or '(none given)'}; choose from {sorted(MODELS)}"
        )
    methods = list(cfg.methods) or list(known)
    bad = [m for m in methods if m not in known]
    if bad:
        raise ConfigError(f"compare: unknown methods {bad}; registered adapters: {sorted(known)}")
    if not cfg.reductions or any(not r > 1 for r in cfg.reductions):
        raise ConfigError(
            f"compare: every FLOPs budget must be a reduction factor > 1 (1 keeps every group); got {cfg.reductions}"
        )
    if cfg.seeds < 1 or cfg.epochs < 1 or cfg.sparse_epochs < 0 or cfg.finetune_epochs < 0:
        raise ConfigError("compare: seeds and epochs must be >= 1, sparse/finetune epochs >= 0")
    _keeps(cfg)  # a budget that keeps no group fails here, before the run folder exists
    return methods


@experiment(
    "compare",
    Config,
    quick=QUICK,
    check=lambda cfg: _check(cfg) and None,
    description="Every compression method (WGSEF, group lasso, L1 filters, TP DepGraph, TP GroupNorm, IMP) on "
    "LeNet-5/MNIST and VGG/Fashion-MNIST at ~2x/4x/8x fewer FLOPs: accuracy, params, FLOPs, measured latency",
)
def run(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    """Dense per (model, seed), then every method at every budget; the table, Pareto plots and records."""
    methods = _check(cfg)
    device = str(ctx.device)
    keeps = _keeps(cfg)
    for name in cfg.models:
        ctx.log(f"{name}: FLOPs budgets {cfg.reductions} → keep ratios {keeps[name]}")
    dense_jobs, jobs = [], []
    for name in cfg.models:
        for s in range(min(cfg.seeds, cfg.vgg_seeds) if name == "vgg" else cfg.seeds):
            folder = ctx.subdir(f"{name}-seed{ctx.seed + s}")
            dense_jobs.append((cfg, name, ctx.seed + s, device, folder))
            jobs += [(cfg, name, ctx.seed + s, m, k, device, folder) for m in methods for k in keeps[name]]
    for _ in pool_map(_dense_job, dense_jobs, cfg.workers):
        pass
    records = []
    for _, rec in pool_map(_compress_job, jobs, cfg.workers):
        records.append(CompressionRecord.from_dict(rec))
        ctx.log(f"  [{len(records)}/{len(jobs)}] {rec['model']} seed {rec['seed']} {rec['method']} keep "
                f"{rec['keep']}: acc {rec['accuracy']:.2f}, FLOPs /{rec['flops_reduction']:.2f}, "
                f"b64 ×{rec['speedup_b64']:.2f}")  # fmt: skip
    ctx.save_json("records.json", [r.to_dict() for r in records])
    latency = _latency(cfg, ctx, keeps, device)
    labels = {n: MODELS[n][3] + (f" (width {cfg.vgg_width:g})" if n == "vgg" else "") for n in cfg.models}
    reductions = {n: cfg.reductions for n in cfg.models}
    return write_tables(ctx, records, labels, keeps, reductions, latency)


def _latency(cfg: Config, ctx: RunContext, keeps: dict[str, list[float]], device: str) -> dict[str, Any]:
    """Dense vs compacted CPU latency per (model, budget), measured after all training, one model at a time
    (so no training process loads the timed cores); every structured method shares these widths."""
    path = ctx.dir / "latency.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for name, ks in keeps.items():
        task = _task(cfg, name, device)
        for k in ks:
            key = f"{name}/{k:g}"
            if key not in done:
                done[key] = measure_budget(task, k, repeat=cfg.latency_repeat)
                ctx.save_json("latency.json", done)
    return done
