"""The GNS data layout (WaterDrop-style sets of the PyTorch GNS port): read and write, without trusting pickles.

A folder holds `metadata.json` (bounds, sequence_length, default_connectivity_radius, dim, dt, vel/acc mean and
std) and one `.npz` per split (`train`, `valid`, `test`) whose members `simulation_trajectory_<i>` are object
arrays `(positions float [T, N, d], particle_type int [N])`. Object arrays are pickles; we read them with the
numpy-only unpickler of `sparsenets.data.arrays`, so a crafted file cannot run code.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sparsenets.data.arrays import unpickle_numpy
from sparsenets.errors import SparsenetsError
from sparsenets.files import atomic_write_bytes, read_json

GNS_SPLITS = ("train", "valid", "test")
METADATA = "metadata.json"


class GnsTrajectory(NamedTuple):
    """One trajectory: positions float32 [T, N, d], types int64 [N]."""

    positions: np.ndarray
    types: np.ndarray


def write_gns_split(path: Path | str, trajectories: list[GnsTrajectory]) -> None:
    """Write `trajectories` as a GNS `.npz` (members `simulation_trajectory_<i>`), atomically."""
    members = {}
    for i, (pos, types) in enumerate(trajectories):
        item = np.empty(2, dtype=object)  # built by hand: np.asarray would try to stack the two arrays
        item[0], item[1] = np.asarray(pos, np.float32), np.asarray(types, np.int64)
        members[f"simulation_trajectory_{i}"] = item
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)
    atomic_write_bytes(path, buf.getvalue())


def write_gns_metadata(folder: Path | str, metadata: dict[str, Any]) -> None:
    """Write `metadata.json` (plain JSON values) into `folder`, atomically."""
    atomic_write_bytes(Path(folder) / METADATA, json.dumps(metadata, indent=1).encode())


def _read_member(blob: bytes, where: str) -> Any:
    f = io.BytesIO(blob)
    try:
        version = np.lib.format.read_magic(f)
        fmt = np.lib.format
        _, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
    except ValueError as err:
        raise SparsenetsError(f"{where} is not a .npy array ({err}); is this a GNS .npz?") from None
    if not dtype.hasobject:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    return unpickle_numpy(blob[f.tell() :], where)


def _as_trajectory(item: Any, where: str) -> GnsTrajectory:
    parts = list(item) if isinstance(item, (np.ndarray, tuple, list)) else []
    if len(parts) < 2:
        raise SparsenetsError(f"{where} is not a (positions, particle_type) pair; is this a GNS .npz?")
    pos, types = np.asarray(parts[0]), np.asarray(parts[1])
    shaped = pos.ndim == 3 and min(pos.shape[:2], default=0) >= 1 and pos.shape[2] in (2, 3)
    if not shaped or types.shape != (pos.shape[1],) or not np.issubdtype(pos.dtype, np.floating):
        raise SparsenetsError(
            f"{where}: positions {pos.shape} {pos.dtype} / particle_type {types.shape} are not float "
            "[T >= 1, N >= 1, d in (2, 3)] / [N]"
        )
    return GnsTrajectory(pos.astype(np.float32), types.astype(np.int64))


def read_gns_split(path: Path | str) -> list[GnsTrajectory]:
    """The trajectories of one GNS `.npz`, in member order (simulation_trajectory_0, _1, ...).

    Raises SparsenetsError for a missing or malformed file, or a member that holds anything but numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise SparsenetsError(f"GNS split {path} does not exist; expected {', '.join(GNS_SPLITS)}.npz")
    try:
        with zipfile.ZipFile(path) as z:
            names = sorted(z.namelist(), key=lambda n: (len(n), n))  # _2 before _10
            blobs = {n: z.read(n) for n in names}
    except zipfile.BadZipFile as err:
        raise SparsenetsError(f"{path} is not an .npz archive ({err})") from None
    return [_as_trajectory(_read_member(b, f"{path}:{n}"), f"{path}:{n}") for n, b in blobs.items()]


def read_gns_metadata(folder: Path | str) -> dict[str, Any]:
    """`metadata.json` of a GNS folder; it must name at least bounds and dim."""
    meta = read_json(Path(folder) / METADATA, "GNS metadata", "expected a WaterDrop-style metadata.json")
    if not isinstance(meta, dict) or "bounds" not in meta or "dim" not in meta:
        raise SparsenetsError(f"{Path(folder) / METADATA} lacks 'bounds' or 'dim'; not a GNS metadata file")
    return meta
