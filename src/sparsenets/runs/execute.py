"""Run, resume or reuse one experiment in its run folder and write result.json around its metrics."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from sparsenets.errors import ConfigError
from sparsenets.files import atomic_write_bytes
from sparsenets.runs.configs import _with_new_defaults, make_config
from sparsenets.runs.context import RunContext
from sparsenets.runs.identity import config_hash, versions
from sparsenets.runs.registry import get
from sparsenets.train import dist
from sparsenets.train.loop import seed_everything


def execute(
    name: str,
    *,
    quick: bool = False,
    out: Path | str | None = None,
    seed: int = 0,
    sets: list[str] | None = None,
    root: Path | str = "runs",
    preset: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run (or resume, or reuse) an experiment and write its result.json; `preset` names overrides that `sets`
    may refine (the run is identified by the resulting config, not by the preset's name).

    Returns:
        (run folder, result dict).
    """
    exp = get(name)
    config = make_config(exp, quick, sets, preset)
    if exp.check is not None:
        exp.check(config)  # a rejected config leaves no folder behind
    run_dir = Path(out) if out is not None else Path(root) / f"{name}-{config_hash(name, config, seed)}"
    identity = {"experiment": name, "config": dataclasses.asdict(config), "seed": seed, "quick": quick}
    identity = json.loads(json.dumps(identity))  # tuples become lists, as they are on disk
    ident_path, result_path = run_dir / "run.json", run_dir / "result.json"
    if ident_path.exists():
        try:
            stored = json.loads(ident_path.read_text())
        except ValueError as e:
            raise ConfigError(
                f"{ident_path} is unreadable; choose another --out (nothing was changed)"
            ) from e
        if _with_new_defaults(stored, identity, exp, quick) != identity:
            raise ConfigError(
                f"run folder {run_dir} holds a run with another config or seed; choose another --out "
                "(nothing was changed)"
            )
        if result_path.exists():
            return run_dir, json.loads(result_path.read_text())
    info = dist.current()
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(ident_path, json.dumps(identity, indent=2).encode())
    dist.barrier()
    threads = getattr(config, "threads", None)
    if threads is not None:  # the one place a run's thread count is set (pool_map's workers inherit it)
        torch.set_num_threads(threads)
    seed_everything(seed)
    ctx = RunContext(dir=run_dir, seed=seed, quick=quick, device=dist.default_device())
    t0 = time.perf_counter()
    metrics = exp.fn(config, ctx)
    result = {
        **identity,
        "metrics": metrics,
        "seconds": time.perf_counter() - t0,
        "world_size": info.world_size,
        "versions": versions(),
    }
    if info.is_main:
        atomic_write_bytes(result_path, json.dumps(result, indent=2, default=float).encode())
    return run_dir, result
