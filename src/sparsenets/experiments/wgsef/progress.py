"""A WGSEF study seed's files: one record per finished method, the dense snapshot and teacher weights, and the
training checkpoints of methods not yet recorded (a killed seed resumes at its unfinished methods)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes

LEGACY_PROGRESS = "methods.json"  # one file per seed, written before session 7: still read
SNAPSHOT = "dense-snapshot.safetensors"
TEACHER = "dense-final.safetensors"  # the finished dense model: the distillation teacher
DENSE_RECORD = "method-dense.json (methods.json in runs from before session 7)"


def _progress_files(save_dir: Path) -> list[Path]:
    legacy = save_dir / LEGACY_PROGRESS
    return ([legacy] if legacy.exists() else []) + sorted(save_dir.glob("method-*.json"))


def load_progress(save_dir: Path | None, seed: int) -> dict[str, Any]:
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


def save_progress(save_dir: Path | None, seed: int, method: str, out: dict[str, Any]) -> None:
    """Record one finished method in its own file (atomic), so parallel jobs of one seed never share a file."""
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"seed": seed, method: out[method]}, indent=2, default=float)
        atomic_write_bytes(save_dir / f"method-{method}.json", body.encode())


def save_snapshot(model: nn.Module, save_dir: Path, name: str = SNAPSHOT) -> None:
    """A dense model's weights for a resumed seed or a parallel job: after `epochs` (`SNAPSHOT`, the magnitude
    baseline's start) or finished (`TEACHER`, the distillation teacher)."""
    save_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state, save_dir / name)


def load_snapshot(
    make_model: Callable[[], nn.Module], save_dir: Path | None, name: str = SNAPSHOT
) -> nn.Module:
    path = None if save_dir is None else save_dir / name
    if path is None or not path.exists():
        raise SparsenetsError(
            f"dense is recorded as finished but its weights {path} are missing; delete {DENSE_RECORD} to re-run it"
        )
    model = make_model()
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as err:  # a truncated file or another architecture: either way, re-run dense
        raise SparsenetsError(
            f"cannot load the dense snapshot {path} ({err}); delete it and {DENSE_RECORD}"
        ) from None
    return model


def drop_checkpoints(save_dir: Path | None, method: str) -> None:
    """A recorded method needs its training checkpoints no more (full-width VGG: ~120 MB each)."""
    if save_dir is not None:
        for ckpt in save_dir.glob(f"train-{method}-*/checkpoints"):
            shutil.rmtree(ckpt, ignore_errors=True)
