"""File primitives every writer shares: checksums, atomic writes (unique temp file, fsync, rename), checksummed
JSON, and folder locks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparsenets.errors import SparsenetsError

if TYPE_CHECKING:  # torch only where tensors are written, so reading run files stays light (the report)
    import torch


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


def atomic_save_safetensors(
    tensors: dict[str, torch.Tensor], path: Path | str, metadata: dict[str, str] | None = None
) -> None:
    """`safetensors.torch.save_file` through a temporary file and a rename (tensors: contiguous, CPU); `metadata`
    goes into the file's header."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = _temp_path(path)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        _fsync_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class CorruptFileError(SparsenetsError):
    """A file the library wrote is missing, torn, or fails its checksum; the message says what to do."""


class FolderBusyError(SparsenetsError):
    """Another live process holds the lock of a folder."""


def read_json(path: Path | str, what: str, fix: str) -> Any:
    """The parsed JSON of `path`; one CorruptFileError "WHAT PATH is missing or unreadable (...); FIX" else."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{what} {path} is missing or unreadable ({err}); {fix}") from None


CHECKSUM_KEY = "checksum"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def with_checksum(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as it reads back from JSON, plus CHECKSUM_KEY: the sha256 of its canonical JSON (see `sha256_json`)."""
    # hash what a reader will see (tuples become lists, numpy scalars floats)
    plain = json.loads(json.dumps(obj, default=float))
    plain.pop(CHECKSUM_KEY, None)
    return {**plain, CHECKSUM_KEY: sha256_json(plain)}


def checksum_ok(obj: Any) -> bool:
    """False when `obj` is not a dict or its CHECKSUM_KEY differs from its content's; True for a dict without one
    (files written before checksums existed: a flipped bit cannot both drop the key and change a value)."""
    if not isinstance(obj, dict):
        return False
    if CHECKSUM_KEY not in obj:  # a 64-hex value under another name is a checksum whose key was damaged
        return not any(isinstance(v, str) and _HEX64.fullmatch(v) for v in obj.values())
    rest = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
    return obj[CHECKSUM_KEY] == sha256_json(rest)


def read_checked_json(path: Path | str, what: str, fix: str) -> dict[str, Any]:
    """`read_json` of a JSON object written by `with_checksum`, verified.

    Raises:
        CorruptFileError: missing, torn, not an object, or failing its checksum (one line ending with `fix`).
    """
    obj = read_json(path, what, fix)
    if not isinstance(obj, dict):
        raise CorruptFileError(f"{what} {path} is not a JSON object (corrupt); {fix}")
    if not checksum_ok(obj):
        raise CorruptFileError(f"{what} {path} fails its checksum (corrupt or edited); {fix}")
    return obj


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def dead_temp_files(directory: Path | str, prefix: str) -> list[Path]:
    """Temp files of `atomic_write_bytes`/`atomic_save_safetensors` for names starting with `prefix` in
    `directory` whose writer process is gone (left by a kill between write and rename)."""
    found = []
    for tmp in Path(directory).glob(f".{prefix}*.tmp"):
        pid = tmp.name.split(".")[-3]  # .NAME.PID.RANDOM.tmp, see _temp_path
        if pid.isdigit() and not pid_alive(int(pid)):
            found.append(tmp)
    return found


@contextlib.contextmanager
def lock_folder(folder: Path | str, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created if missing) while the block runs.

    The lock is an `flock` on FOLDER/.lock, which the kernel drops when its holder dies, so a lock left by a
    killed process is taken over; the file keeps the holder's pid for the message.

    Raises:
        FolderBusyError: another live process holds it (one line naming its pid).
        SparsenetsError: the folder cannot be created or the lock file cannot be opened.
    """
    import fcntl

    folder = Path(folder)
    lock = folder / ".lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise SparsenetsError(f"cannot lock {what} {folder} ({err}); choose another folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            alive = holder.isdigit() and pid_alive(int(holder))
            raise FolderBusyError(
                f"{what} {folder} is in use by another process (pid {holder if alive else 'unknown'}); "
                "wait for it to finish or choose another folder (nothing was changed)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield folder
    finally:
        os.close(fd)  # closing drops the flock; the file stays so that no two processes lock different inodes
