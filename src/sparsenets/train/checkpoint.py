"""Atomic, resumable checkpoints: tensors in safetensors, everything else in a JSON sidecar that is written last.

A checkpoint of step s is the pair `ckpt-s.safetensors` + `ckpt-s.json`. Each file is written to a temporary name,
fsynced and renamed, so a run killed at any instant leaves either a complete checkpoint or none. Both files are
verified on load: the sidecar records the tensor file's sha256 and its own (over its canonical JSON), the tensor
file's metadata repeats the step and the hash of the sidecar's state tree, and the tensor file's name must be the
one of that step in the same folder. A damaged checkpoint is reported, never deleted, never half-loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from sparsenets.errors import CheckpointError
from sparsenets.files import (
    atomic_save_safetensors,
    atomic_write_bytes,
    dead_temp_files,
    sha256_file,
    sha256_json,
)

_TENSOR = "__tensor__"
_NAME = re.compile(r"ckpt-(\d+)\.json$")


def split_tensors(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor inside nested dicts/lists/tuples by a reference and collect it in `out`.

    Returns:
        A JSON-serialisable copy of `obj`; tensors are stored (contiguous, detached, CPU) under their path.
    """
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().to("cpu").contiguous().clone()
        return {_TENSOR: prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), split_tensors(v, f"{prefix}.{k}", out)] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        items = [split_tensors(v, f"{prefix}.{i}", out) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy arrays and scalars
        return {"__numpy__": obj.tolist(), "dtype": str(obj.dtype)}
    return obj


def _key(k: Any) -> Any:
    return {"__int__": k} if isinstance(k, int) else k


def _unkey(k: Any) -> Any:
    return k["__int__"] if isinstance(k, dict) else k


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `split_tensors`."""
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if "__dict__" in obj:
            return {_unkey(k): join_tensors(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(join_tensors(v, tensors) for v in obj["__tuple__"])
        if "__numpy__" in obj:
            import numpy as np

            return np.asarray(obj["__numpy__"], dtype=obj["dtype"])
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def _st_name(step: int) -> str:
    return f"ckpt-{step:09d}.safetensors"


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Save `state` (nested dicts of tensors and JSON values) as checkpoint `step`; keep the newest `keep`.

    Returns:
        The path of the JSON sidecar.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = json.loads(json.dumps(split_tensors(state, "s", tensors)))  # hash exactly what a reader will parse
    st_path = directory / _st_name(step)
    # the tensor file names its step and the sidecar's tree, so a sidecar of another step cannot pair with it
    atomic_save_safetensors(tensors, st_path, metadata={"step": str(step), "tree_sha256": sha256_json(tree)})
    meta = {"step": step, "tensors": st_path.name, "sha256": sha256_file(st_path), "state": tree}
    meta["sidecar_sha256"] = sha256_json(meta)
    js_path = directory / f"ckpt-{step:09d}.json"
    atomic_write_bytes(js_path, json.dumps(meta).encode())
    for old in sorted(_steps(directory))[:-keep]:
        _remove(directory, old)
    return js_path


def _delete(path: Path) -> None:
    path.unlink(missing_ok=True)


def _remove(directory: Path, step: int) -> None:
    # the sidecar first: a kill in between leaves an orphan tensor file (swept later), never a sidecar without one
    _delete(directory / f"ckpt-{step:09d}.json")
    _delete(directory / _st_name(step))


def sweep_orphans(directory: Path) -> list[Path]:
    """Delete what a killed writer left in `directory`: tensor files without their sidecar (a kill between the two
    renames, or inside rotation) and temp files of dead processes. Never a file that belongs to a checkpoint.

    Returns:
        The deleted paths.
    """
    removed = []
    if not directory.is_dir():
        return removed
    for st in directory.glob("ckpt-*.safetensors"):
        if not st.with_suffix(".json").exists():
            _delete(st)
            removed.append(st)
    for tmp in dead_temp_files(directory, "ckpt-"):
        _delete(tmp)
        removed.append(tmp)
    return removed


def _steps(directory: Path) -> list[int]:
    return [int(m.group(1)) for p in directory.glob("ckpt-*.json") if (m := _NAME.search(p.name))]


def latest_checkpoint(directory: Path) -> Path | None:
    """The sidecar of the newest checkpoint in `directory`, or None if there is none."""
    steps = _steps(directory) if directory.is_dir() else []
    return directory / f"ckpt-{max(steps):09d}.json" if steps else None


def read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The verified sidecar of a checkpoint (its own hash, its step against its name, its tensor file's name).

    Raises:
        CheckpointError: one line saying what is wrong and what to do.
    """
    hint = _hint(sidecar)
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {sidecar} is corrupt ({e.__class__.__name__}); {hint}") from None
    if not isinstance(meta, dict) or "sidecar_sha256" not in meta:
        raise CheckpointError(f"checkpoint {sidecar} is corrupt (no sidecar_sha256); {hint}")
    rest = {k: v for k, v in meta.items() if k != "sidecar_sha256"}
    if meta["sidecar_sha256"] != sha256_json(rest):
        raise CheckpointError(f"checkpoint {sidecar} is corrupt (fails its sidecar_sha256 check); {hint}")
    m, step = _NAME.search(sidecar.name), meta.get("step")
    own = m is not None and isinstance(step, int) and step == int(m.group(1))
    if not own or meta.get("tensors") != _st_name(step):
        # a sidecar may only name its own step's tensor file in its own folder (no paths out of the run)
        raise CheckpointError(
            f"checkpoint {sidecar} is corrupt (its step or tensor file is not its own); {hint}"
        )
    return meta


def _hint(sidecar: Path) -> str:
    return f"move {sidecar.parent} aside to start over, or move this checkpoint aside to resume from an earlier one"


def load_checkpoint(sidecar: Path) -> tuple[int, dict[str, Any]]:
    """Load and verify a checkpoint.

    Returns:
        (step, state) with tensors on CPU.

    Raises:
        CheckpointError: the sidecar is damaged or not this step's, the tensor file is missing, its checksum or
            metadata differs, or the two files do not belong together.
    """
    meta = read_sidecar(sidecar)
    hint, step = _hint(sidecar), meta["step"]
    st_path = sidecar.parent / meta["tensors"]
    if not st_path.is_file():
        raise CheckpointError(f"checkpoint {sidecar} has no tensor file {st_path.name}; {hint}")
    if sha256_file(st_path) != meta.get("sha256"):
        raise CheckpointError(f"checkpoint {st_path} fails its sha256 check (corrupt or truncated); {hint}")
    try:
        with safe_open(str(st_path), "pt") as f:
            stamp = f.metadata() or {}
        tensors = load_file(str(st_path))
    except Exception as e:
        raise CheckpointError(f"checkpoint {st_path} cannot be read ({e}); {hint}") from None
    if stamp.get("step") != str(step) or stamp.get("tree_sha256") != sha256_json(meta["state"]):
        raise CheckpointError(f"checkpoint {sidecar} and {st_path.name} do not belong together; {hint}")
    try:
        state = join_tensors(meta["state"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {sidecar} refers to a tensor it lacks ({e}); {hint}") from None
    return step, state
