"""Reading finished run folders: which folders hold a result, their metrics flattened, their JSON-lines logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparsenets.errors import SparsenetsError


def find_runs(dirs: list[Path]) -> list[Path]:
    """Every folder under `dirs` that holds a result.json (a finished run), sorted."""
    found: set[Path] = set()
    for d in dirs:
        if not d.exists():
            raise SparsenetsError(f"{d} does not exist; pass run folders or the folder that holds them")
        found.update(p.parent for p in d.rglob("result.json"))
        if (d / "result.json").exists():
            found.add(d)
    if not found:
        raise SparsenetsError(
            f"no result.json under {', '.join(map(str, dirs))}; run `sparsenets run NAME` first"
        )
    return sorted(found)


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float | int | str]:
    """Scalar leaves of a nested metrics dict, keys joined with '.' (lists are left out)."""
    out: dict[str, float | int | str] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, bool | int | float | str) and v is not None:
            out[key] = v
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (blank lines skipped)."""
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
