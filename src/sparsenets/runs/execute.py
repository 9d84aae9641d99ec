"""Run, resume or reuse one experiment in its run folder and write result.json around its metrics."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from sparsenets.errors import ConfigError
from sparsenets.files import (
    atomic_write_bytes,
    dead_temp_files,
    lock_folder,
    read_checked_json,
    read_json,
    with_checksum,
)
from sparsenets.report.runs import LOGS_KEY, log_stamps, verify_logs
from sparsenets.runs.configs import _with_new_defaults, make_config
from sparsenets.runs.context import RunContext
from sparsenets.runs.identity import config_hash, versions
from sparsenets.runs.registry import Experiment, get
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

    The run folder is locked while this runs: a second process into the same folder gets one clear error.

    Returns:
        (run folder, result dict).

    Raises:
        SparsenetsError: a bad config, a folder of another run or in use by another process, or a run.json,
            result.json, checkpoint or metrics.jsonl that is torn or fails its check (one line each).
    """
    exp = get(name)
    config = make_config(exp, quick, sets, preset)
    if exp.check is not None:
        exp.check(config)  # a rejected config leaves no folder behind
    run_dir = Path(out) if out is not None else Path(root) / f"{name}-{config_hash(name, config, seed)}"
    identity = {"experiment": name, "config": dataclasses.asdict(config), "seed": seed, "quick": quick}
    identity = json.loads(json.dumps(identity))  # tuples become lists, as they are on disk
    # DDP ranks of one run share its folder: only rank 0 holds the lock
    lock = lock_folder(run_dir, "run folder") if dist.current().is_main else contextlib.nullcontext()
    with lock:
        return _execute_in(exp, config, identity, run_dir)


def _execute_in(
    exp: Experiment, config: Any, identity: dict[str, Any], run_dir: Path
) -> tuple[Path, dict[str, Any]]:
    ident_path, result_path = run_dir / "run.json", run_dir / "result.json"
    if dist.current().is_main:
        # the lock is ours: temp files of dead writers anywhere in the folder (masks/, sub-runs) are a kill's debris
        folders = [run_dir, *(p for p in run_dir.rglob("*") if p.is_dir())] if run_dir.is_dir() else []
        for tmp in (t for folder in folders for t in dead_temp_files(folder, "")):
            tmp.unlink(missing_ok=True)
    fix = f"move {run_dir} aside or choose another --out (nothing was changed)"
    if ident_path.exists():
        stored = read_json(ident_path, "run file", fix)
        if (
            not isinstance(stored, dict)
            or _with_new_defaults(stored, identity, exp, identity["quick"]) != identity
        ):
            raise ConfigError(
                f"run folder {run_dir} holds a run with another config or seed; choose another --out "
                "(nothing was changed)"
            )
        if result_path.exists():
            fix = f"move {result_path} aside to finish the run again from its last checkpoint (nothing was changed)"
            result = read_checked_json(result_path, "result file", fix)
            # a finished log cannot be rebuilt from its hash: the run must start over in a fresh folder
            verify_logs(run_dir, result, f"move {run_dir} aside and run again (nothing was changed)")
            return run_dir, result
    info = dist.current()
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(ident_path, json.dumps(identity, indent=2).encode())
    dist.barrier()
    threads = getattr(config, "threads", None)
    if threads is not None:  # the one place a run's thread count is set (pool_map's workers inherit it)
        torch.set_num_threads(threads)
    seed = identity["seed"]
    seed_everything(seed)
    ctx = RunContext(dir=run_dir, seed=seed, quick=identity["quick"], device=dist.default_device())
    t0 = time.perf_counter()
    metrics = exp.fn(config, ctx)
    result = {
        **identity,
        "metrics": metrics,
        "seconds": time.perf_counter() - t0,
        "world_size": info.world_size,
        "versions": versions(),
    }
    if info.is_main:  # the logs are rank 0's files
        result[LOGS_KEY] = log_stamps(run_dir)  # covered by the checksum: a changed log is detected on reuse
    result = with_checksum(result)  # what the file holds, so a reused run returns exactly this
    if info.is_main:
        atomic_write_bytes(result_path, json.dumps(result, indent=2).encode())
    return run_dir, result
