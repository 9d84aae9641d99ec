"""File primitives every writer shares: checksums and atomic writes (unique temp file, fsync, rename)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from sparsenets.errors import SparsenetsError


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of `obj` in a canonical JSON form (sorted keys, no spaces): a hash that survives re-indenting."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def _temp_path(path: Path) -> Path:
    # unique per writer, so two processes writing the same file never share (or delete) a temp file
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _fsync_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half of it."""
    path = Path(path)
    tmp = _temp_path(path)
    try:
        tmp.write_bytes(data)
        _fsync_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left over when the write or rename failed


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path | str) -> None:
    """`safetensors.torch.save_file` through a temporary file and a rename (tensors: contiguous, CPU)."""
    path = Path(path)
    tmp = _temp_path(path)
    try:
        save_file(tensors, str(tmp))
        _fsync_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path | str, what: str, fix: str) -> Any:
    """The parsed JSON of `path`; one SparsenetsError "WHAT PATH is missing or unreadable (...); FIX" else."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SparsenetsError(f"{what} {path} is missing or unreadable ({err}); {fix}") from None
