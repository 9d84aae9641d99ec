"""The GIOROM study (spec "Small-scale reproduction"): A = full-order GNS, A′ = GIOROM's stepper on all N,
B = GIOROM-lite on M FPS-sampled particles + kernel decoder, C = B's stepper + plain Shepard; every arm with the
same noise, optimiser and step budget. Phases: generate the data set (cached) → train steppers and decoders (pool)
→ evaluate rollouts (pool) → time steps on `timing_threads` threads → report. `giorom-water2d` and
`giorom-jelly2d` call `run_study`."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load_file

from sparsenets import giorom
from sparsenets.data import mpm
from sparsenets.errors import ConfigError
from sparsenets.experiments.giorom import arms as A
from sparsenets.experiments.giorom.report import rollout_pictures, write_report
from sparsenets.experiments.giorom.timing import decoder_vs_queries, step_split
from sparsenets.runs import PoolConfig, RunContext, pool_map


@dataclass
class StudyConfig(PoolConfig):
    """Hyper-parameters of a GIOROM study (docs/methods/giorom.md, "The study").

    Attributes:
        n_particles, frames, n_train, n_val, n_test, data_seed: the generated MPM set's parameters.
        sample_sizes: M of the B arms (N/M = 16 and 32 are the claim's ratios).
        sampling: "fps" or "random" fixed sparse ids.
        gns_mp: message-passing steps of the full GNS (A); stepper_mp: GIOROM's (2 + 2), also A′'s.
        hidden: latent width of every stepper (one width for all arms, so only depth and M differ).
        radius_scale: R_full = radius_scale × the data set's R; B uses R_full·√(N/M).
        noise_std: random-walk training noise σ (per frame, data units), all arms alike; with `noise_relative`
            a fraction of the training set's acceleration std (mean over dimensions) instead.
        noise_relative: read `noise_std` as that fraction (0.4 gives water 3e-4, jelly 1e-4).
        target: the stepper's training target, "clean" (the spec's: the clean x_{t+1}, so the last position's noise
            is in the target too) or "gns" (GNS's convention: only the velocity noise is corrected).
        acc_history: also feed the stepper the past accelerations (`StepperConfig.acc_history`).
        train_steps, batch_size, lr, final_lr_fraction: the shared budget (Adam, exponential decay to lr·fraction).
        decoder_steps, decoder_lr, decoder_queries, decoder_grid: the kernel decoder's training.
        horizons: rollout horizons in frames; claim_horizon: the one claim (2) judges (dense MSE ≤ 2× A's).
        eval_trajectories: test trajectories rolled out (0: all).
        timing_repeat, timing_threads: median of this many steps, on this many torch threads.
        query_counts: N_query values of the decoder-time curve.
        big_n, big_frames, big_repeat: the larger set timed with untrained weights (0: skip), median of
            `big_repeat` steps (fewer than `timing_repeat`: a full-GNS step at 16k takes seconds on 2 cores).
        checkpoint_every: Trainer checkpoints (resume) of every training job.
    """

    n_particles: int = 4096
    frames: int = 160
    n_train: int = 24
    n_val: int = 4
    n_test: int = 4
    data_seed: int = 0
    sample_sizes: tuple[int, ...] = (128, 256, 512, 1024)
    sampling: str = "fps"
    gns_mp: int = 5
    stepper_mp: int = 4
    hidden: int = 64
    radius_scale: float = 1.0
    noise_std: float = 3e-4
    noise_relative: bool = False
    target: str = "clean"
    acc_history: bool = False
    train_steps: int = 500
    batch_size: int = 1
    lr: float = 1e-3
    final_lr_fraction: float = 0.1
    decoder_steps: int = 1500
    decoder_lr: float = 1e-3
    decoder_queries: int = 1024
    decoder_grid: int = 64
    horizons: tuple[int, ...] = (20, 50, 150)
    claim_horizon: int = 50
    eval_trajectories: int = 2
    timing_repeat: int = 50
    timing_threads: int = 2
    query_counts: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384)
    big_n: int = 16384
    big_frames: int = 10
    big_repeat: int = 10
    checkpoint_every: int = 100
    workers: int = 2


QUICK: dict[str, Any] = {  # a smoke run: tiny set, a few steps, no verdict
    "n_particles": 512,
    "frames": 30,
    "n_train": 2,
    "n_val": 1,
    "n_test": 1,
    "sample_sizes": (16, 32),
    "gns_mp": 2,
    "stepper_mp": 2,
    "hidden": 16,
    "train_steps": 4,
    "decoder_steps": 4,
    "decoder_queries": 128,
    "decoder_grid": 16,
    "horizons": (5, 10, 20),
    "claim_horizon": 10,
    "eval_trajectories": 1,
    "timing_repeat": 3,
    "query_counts": (128, 256, 512),
    "big_n": 1024,
    "big_frames": 8,
    "big_repeat": 3,
    "checkpoint_every": 2,
    "workers": 1,
}


def check(cfg: StudyConfig) -> None:
    """Reject, before the run folder exists, a config the study cannot run (one line each)."""
    n = cfg.n_particles
    if cfg.sampling not in ("fps", "random"):
        raise ConfigError(f"sampling must be 'fps' or 'random', got {cfg.sampling!r}")
    bad = [m for m in cfg.sample_sizes if not 2 <= m < n]
    if bad or not cfg.sample_sizes:
        raise ConfigError(
            f"sample_sizes {list(cfg.sample_sizes)}: each M must lie in [2, n_particles={n}); the data set is too small for {bad}"
        )
    if cfg.frames - (A.HISTORY + 1) < max(cfg.horizons, default=0) or min(cfg.horizons, default=0) < 1:
        raise ConfigError(
            f"horizons {list(cfg.horizons)} need frames >= {A.HISTORY + 1} + the longest horizon (frames={cfg.frames})"
        )
    if cfg.claim_horizon not in cfg.horizons:
        raise ConfigError(f"claim_horizon {cfg.claim_horizon} must be one of horizons {list(cfg.horizons)}")
    if cfg.eval_trajectories < 0 or cfg.eval_trajectories > cfg.n_test:
        raise ConfigError(
            f"eval_trajectories must lie in [0, n_test={cfg.n_test}], got {cfg.eval_trajectories}"
        )
    if not (cfg.noise_std >= 0 and cfg.radius_scale > 0 and 0 < cfg.final_lr_fraction <= 1):
        raise ConfigError("noise_std must be >= 0, radius_scale > 0 and final_lr_fraction in (0, 1]")
    if cfg.target not in giorom.windows.TARGETS:
        raise ConfigError(f"target must be one of {list(giorom.windows.TARGETS)}, got {cfg.target!r}")
    if (
        min(
            cfg.gns_mp,
            cfg.stepper_mp,
            cfg.decoder_grid - 1,
            *cfg.query_counts,
            cfg.big_frames - A.HISTORY - 1,
        )
        < 1
    ):
        raise ConfigError("gns_mp, stepper_mp, query_counts must be >= 1, decoder_grid >= 2, big_frames > 6")
    if cfg.big_n and cfg.big_n < 64:
        raise ConfigError(f"big_n must be 0 (skip) or >= 64 particles, got {cfg.big_n}")  # fmt: skip


def make_arms(cfg: StudyConfig, radius: float) -> list[A.Arm]:
    """A, A′, then B at each M (largest first), with R_sparse = R_full·√(N/M) (2-D: the degree stays put)."""
    n, r = cfg.n_particles, radius * cfg.radius_scale
    arms = [
        A.Arm("A", "gns", n, cfg.gns_mp, cfg.hidden, r),
        A.Arm("A'", "stepper-full", n, cfg.stepper_mp, cfg.hidden, r),
    ]
    for m in sorted(cfg.sample_sizes, reverse=True):
        arms.append(A.Arm(f"B{m}", "giorom", m, cfg.stepper_mp, cfg.hidden, r * math.sqrt(n / m)))
    return arms


def _train_job(job: A.Job) -> dict[str, Any]:
    return A.train_stepper(job) if job.arm is not None else A.train_decoder(job)


def run_study(cfg: StudyConfig, ctx: RunContext, material: str) -> dict[str, Any]:
    """The whole study on one material; returns the metrics dict (also in results.json)."""
    check(cfg)
    c = dataclasses.asdict(cfg)
    mpm.generate(material, log=ctx.log, **A.data_params(c))
    meta = A.load_split(material, c, "val").metadata
    arms = make_arms(cfg, meta["radius"])
    ctx.log(
        f"giorom {material}: N = {cfg.n_particles}, R_full = {arms[0].radius:.4g}, arms {[a.name for a in arms]}"
    )
    device = str(ctx.device)
    job = lambda arm, m, name: A.Job(c, material, arm, m, ctx.subdir(name), device, ctx.seed)  # noqa: E731
    train_jobs = [job(a, a.m, f"arm-{a.name}") for a in arms]
    train_jobs += [job(None, m, f"decoder-M{m}") for m in sorted(cfg.sample_sizes, reverse=True)]
    trained = {}
    for i, rec in pool_map(_train_job, train_jobs, cfg.workers):
        trained[train_jobs[i].folder.name] = rec
        ctx.log(f"  trained {train_jobs[i].folder.name}: {json.dumps(rec)}")
    records = {}
    eval_jobs = train_jobs[: len(arms)]
    for i, rec in pool_map(A.evaluate, eval_jobs, cfg.workers):
        name = arms[i].name
        records[name] = {**rec, **{k: v for k, v in trained[f"arm-{name}"].items() if k != "arm"}}
        ctx.log(f"  evaluated {name}: dense MSE {rec['dense_mse']}, sparse {rec['sparse_mse']}")
    records = {a.name: records[a.name] for a in arms}  # the arms' order (A, A′, B by M), not the pool's
    res = {
        "material": material, "N": cfg.n_particles, "frame_dt": meta["dt"], "quick": ctx.quick,
        "horizons": list(cfg.horizons),
        "claim_horizon": cfg.claim_horizon, "train_steps": cfg.train_steps, "timing_repeat": cfg.timing_repeat,
        "noise_std": A.noise_sigma(c, meta), "target": cfg.target,
        "big_repeat": cfg.big_repeat,
        "timing_threads": cfg.timing_threads, "arms": records, "no_model": A.no_model_mse(material, c),
    }  # fmt: skip
    _timings(cfg, ctx, material, arms, res)
    ctx.save_json("results.json", res)
    write_report(ctx, res)
    _pictures(cfg, ctx, material, res)
    return _headline(res)


def _timings(
    cfg: StudyConfig, ctx: RunContext, material: str, arms: list[A.Arm], res: dict[str, Any]
) -> None:
    """Step splits of every arm, decoder time vs queries, the big-N split; cached in timing.json (measured
    after every training job, on `timing_threads` threads in this process)."""
    path = ctx.dir / "timing.json"
    if path.exists():
        got = json.loads(path.read_text())
    else:
        c = dataclasses.asdict(cfg)
        previous = torch.get_num_threads()
        torch.set_num_threads(cfg.timing_threads)
        try:
            got = _measure(cfg, c, ctx, material, arms)
        finally:
            torch.set_num_threads(previous)
        ctx.save_json("timing.json", got)
    for name, t in got["arms"].items():
        res["arms"][name]["timing"] = t
    res["query_timing"] = got["queries"]
    res["load_average"] = [got["load_before"], got["load_after"]]
    if got.get("big"):
        res["timing_16k"], res["timing_16k_n"] = got["big"], cfg.big_n


def _measure(
    cfg: StudyConfig, c: dict[str, Any], ctx: RunContext, material: str, arms: list[A.Arm]
) -> dict[str, Any]:
    test = A.load_split(material, c, "test")
    meta, n, c1 = test.metadata, cfg.n_particles, A.HISTORY + 1
    out: dict[str, Any] = {"arms": {}, "load_before": os.getloadavg()[0]}  # a busy machine slows every arm
    for arm in arms:
        model = A.load_stepper(c, meta, arm, ctx.dir / f"arm-{arm.name}")
        ids = A.arm_ids(test, arm.m, n, cfg.sampling)[0]
        ref = test.reference[0]
        x_hist = test.positions[0, :c1][:, ids].transpose(0, 1)
        dec = A.load_decoder(c, meta, ctx.dir / f"decoder-M{arm.m}") if arm.kind == "giorom" else None
        with torch.no_grad():
            t = step_split(model, x_hist, test.types[0, ids], cfg.timing_repeat, dec, ref[ids], ref)
            if dec is not None:
                shepard = giorom.ShepardDecoder()
                t["shepard_ms"] = decoder_vs_queries(shepard, ref[ids], test.positions[0, c1, ids], ref, [n], cfg.timing_repeat)[0]  # fmt: skip
        out["arms"][arm.name] = t
        ctx.log(f"  timed {arm.name}: {t}")
    m = sorted(cfg.sample_sizes)[len(cfg.sample_sizes) // 2]
    dec = A.load_decoder(c, meta, ctx.dir / f"decoder-M{m}")
    ids = A.arm_ids(test, m, n, cfg.sampling)[0]
    ms = decoder_vs_queries(dec, test.reference[0, ids], test.positions[0, c1, ids], test.reference[0],
                            list(cfg.query_counts), cfg.timing_repeat, ctx.seed)  # fmt: skip
    out["queries"] = {"M": m, "n_query": list(cfg.query_counts), "decoder_ms": ms}
    if cfg.big_n:
        out["big"] = _measure_big(cfg, c, ctx, material, arms)
    out["load_after"] = os.getloadavg()[0]
    return out


def _measure_big(
    cfg: StudyConfig, c: dict[str, Any], ctx: RunContext, material: str, arms: list[A.Arm]
) -> dict[str, Any]:
    """A, A′ and B at the same N/M ratios on a `big_n`-particle set (one short trajectory per split), untrained."""
    params = {
        "n_particles": cfg.big_n,
        "frames": cfg.big_frames,
        "n_train": 1,
        "n_val": 1,
        "n_test": 1,
        "seed": cfg.data_seed,
    }
    mpm.generate(material, log=ctx.log, **params)
    test = mpm.load_particles(material, "test", **params)
    meta, n, c1, scale = test.metadata, cfg.big_n, A.HISTORY + 1, cfg.big_n / cfg.n_particles
    radius = meta["radius"] * cfg.radius_scale
    out = {}
    for arm in arms:
        m = n if arm.m == cfg.n_particles else int(arm.m * scale)
        big = A.Arm(arm.name, arm.kind, m, arm.n_mp, arm.hidden, radius * math.sqrt(n / m))
        torch.manual_seed(ctx.seed)
        model = giorom.Stepper(A.stepper_config(c, meta, big)).eval()
        ids = A.arm_ids(test, m, n, cfg.sampling)[0]
        ref = test.reference[0]
        dec = giorom.KernelDecoder(A.decoder_config(c, meta)).eval() if arm.kind == "giorom" else None
        with torch.no_grad():
            t = step_split(model, test.positions[0, :c1][:, ids].transpose(0, 1), test.types[0, ids],
                           cfg.big_repeat, dec, ref[ids], ref)  # fmt: skip
        out[arm.name] = {"M": m, **t}
        ctx.log(f"  timed {arm.name} at N = {n}: {t}")
    return out


def _pictures(cfg: StudyConfig, ctx: RunContext, material: str, res: dict[str, Any]) -> None:
    """Ground truth, GNS (A) and GIOROM (B at N/M = 16, or the nearest M) on test trajectory 0."""
    test = A.load_split(material, dataclasses.asdict(cfg), "test")
    c1, steps = A.HISTORY + 1, max(cfg.horizons)
    m = min(cfg.sample_sizes, key=lambda m: abs(cfg.n_particles / m - 16))
    frames = {"ground truth": test.positions[0, c1 : c1 + steps].numpy()}
    for name, label in (("A", f"GNS (A, {cfg.gns_mp} MP)"), (f"B{m}", f"GIOROM (B, M = {m})")):
        frames[label] = load_file(str(ctx.dir / f"arm-{name}" / "rollout0.safetensors"))["dense"].numpy()
    shown = sorted({0, *(h - 1 for h in cfg.horizons)})
    rollout_pictures(ctx, frames, shown, material)


def _headline(res: dict[str, Any]) -> dict[str, Any]:
    """The metrics result.json carries: per arm the claim horizon's dense/sparse MSE and end-to-end step time,
    and the claim's own figures by N/M: `speedup_nm<r>` (A's step / B's) and `mse_vs_gns_nm<r>` (B's dense MSE /
    A's), plus `mse_vs_static_<arm>` (the longest horizon's dense MSE / "particles stay put"'s: < 1 when it
    learned something)."""
    h, longest = str(res["claim_horizon"]), str(max(res["horizons"]))
    arms = res["arms"]
    out: dict[str, Any] = {
        name: {"dense_mse": a["dense_mse"][h], "sparse_mse": a["sparse_mse"][h], "step_ms": a["timing"]["total_ms"]}
        for name, a in arms.items()
    }  # fmt: skip
    full = arms.get("A")
    static = res.get("no_model", {}).get("static", {}).get(longest)
    for name, a in arms.items():
        if full is not None and name.startswith("B"):
            r = round(res["N"] / a["M"])
            out[f"speedup_nm{r}"] = full["timing"]["total_ms"] / a["timing"]["total_ms"]
            out[f"mse_vs_gns_nm{r}"] = a["dense_mse"][h] / full["dense_mse"][h]
        if static:
            out[f"mse_vs_static_{name}"] = a["dense_mse"][longest] / static
    return out
