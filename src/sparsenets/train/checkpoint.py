"""Atomic, resumable checkpoints: tensors in safetensors, everything else in a JSON sidecar that is written last.

A checkpoint of step s is the pair `ckpt-s.safetensors` + `ckpt-s.json`. Each file is written to a temporary name,
fsynced and renamed, and the sidecar records the sha256 of the tensor file, so a run killed at any instant leaves
either a complete checkpoint or none, and a damaged one is detected rather than half-loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from sparsenets.errors import CheckpointError
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes, sha256_file

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


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Save `state` (nested dicts of tensors and JSON values) as checkpoint `step`; keep the newest `keep`.

    Returns:
        The path of the JSON sidecar.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = split_tensors(state, "s", tensors)
    st_path = directory / f"ckpt-{step:09d}.safetensors"
    atomic_save_safetensors(tensors, st_path)
    meta = {"step": step, "tensors": st_path.name, "sha256": sha256_file(st_path), "state": tree}
    js_path = directory / f"ckpt-{step:09d}.json"
    atomic_write_bytes(js_path, json.dumps(meta).encode())
    for old in sorted(_steps(directory))[:-keep]:
        for suffix in (".json", ".safetensors"):
            (directory / f"ckpt-{old:09d}{suffix}").unlink(missing_ok=True)
    return js_path


def _steps(directory: Path) -> list[int]:
    return [int(m.group(1)) for p in directory.glob("ckpt-*.json") if (m := _NAME.search(p.name))]


def latest_checkpoint(directory: Path) -> Path | None:
    """The sidecar of the newest checkpoint in `directory`, or None if there is none."""
    steps = _steps(directory) if directory.is_dir() else []
    return directory / f"ckpt-{max(steps):09d}.json" if steps else None


def load_checkpoint(sidecar: Path) -> tuple[int, dict[str, Any]]:
    """Load and verify a checkpoint.

    Returns:
        (step, state) with tensors on CPU.

    Raises:
        CheckpointError: the sidecar is not valid JSON, the tensor file is missing, or its checksum differs.
    """
    hint = (
        f"move {sidecar.parent} aside to start over, or delete this checkpoint to resume from an earlier one"
    )
    try:
        meta = json.loads(sidecar.read_text())
        st_path = sidecar.parent / meta["tensors"]
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {sidecar} is corrupt ({e.__class__.__name__}); {hint}") from e
    if not st_path.is_file():
        raise CheckpointError(f"checkpoint {sidecar} has no tensor file {st_path.name}; {hint}")
    if sha256_file(st_path) != meta.get("sha256"):
        raise CheckpointError(f"checkpoint {st_path} fails its sha256 check (corrupt or truncated); {hint}")
    try:
        tensors = load_file(str(st_path))
    except Exception as e:
        raise CheckpointError(f"checkpoint {st_path} cannot be read ({e}); {hint}") from e
    return int(meta["step"]), join_tensors(meta["state"], tensors)
