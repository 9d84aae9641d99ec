"""Reading finished run folders: which folders hold a result, their metrics flattened, their JSON-lines logs, and
the record in result.json (length and sha256) of every metrics.jsonl, against which a finished log is verified."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsenets.errors import SparsenetsError
from sparsenets.files import CorruptFileError, read_checked_json, sha256_bytes

LOG_NAME = "metrics.jsonl"
LOGS_KEY = "logs"  # result.json: {path relative to the run folder: {"bytes": n, "sha256": hex}} of each log


@dataclass
class Run:
    """One finished run folder as the report sees it.

    Attributes:
        path: the run folder.
        experiment: the experiment name from result.json (the folder name when missing).
        quick: True for a `--quick` smoke run.
        seed: the base seed (None when result.json has none).
        seconds: wall time of the run.
        config: the flattened config.
        metrics: the flattened metrics (scalars only).
        versions: result.json's "versions" (git commit, torch, python, ...).
        fragment: the experiment's own report.md ("" when it wrote none).
        figures: the figures/*.png it saved, sorted by name.
        logs_verified: False for a result.json written before logs were recorded (its logs are read unverified).
    """

    path: Path
    experiment: str
    quick: bool
    seed: int | None
    seconds: float | None
    config: dict[str, float | int | str]
    metrics: dict[str, float | int | str]
    versions: dict[str, Any] = field(default_factory=dict)
    fragment: str = ""
    figures: list[Path] = field(default_factory=list)
    logs_verified: bool = True


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


def load_run(path: Path) -> Run:
    """Read one run folder (result.json, report.md, figures/); a damaged result.json is a clear error."""
    fix = "move it aside and rerun that experiment (it resumes from its last checkpoint), or leave it out"
    result = read_checked_json(path / "result.json", "result file", fix)  # torn, garbled or changed: one line
    # so no curve is drawn from a log changed after the run (a log cannot be rebuilt: the run starts over)
    verified = verify_logs(path, result, f"move {path} aside and run that experiment again, or leave it out")
    seed = result.get("seed")
    seconds = result.get("seconds")
    figures = sorted(p for p in (path / "figures").glob("*.png") if p.stat().st_size > 0)
    report = path / "report.md"
    return Run(
        path=path,
        experiment=str(result.get("experiment") or path.name),
        quick=bool(result.get("quick", False)),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        config=flatten(result.get("config") or {}, lists=True),
        metrics=flatten(result.get("metrics") or {}),
        versions=result.get("versions") if isinstance(result.get("versions"), dict) else {},
        fragment=report.read_text(errors="replace") if report.is_file() else "",
        figures=figures,
        logs_verified=verified,
    )


def log_stamps(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The length and sha256 of every metrics.jsonl under `run_dir`, keyed by its path relative to `run_dir`."""
    stamps = {}
    for log in sorted(run_dir.rglob(LOG_NAME)):
        data = log.read_bytes()
        stamps[log.relative_to(run_dir).as_posix()] = {"bytes": len(data), "sha256": sha256_bytes(data)}
    return stamps


def verify_logs(run_dir: Path, result: dict[str, Any], fix: str) -> bool:
    """Check every metrics.jsonl under `run_dir` against the record in a (checksum-verified) `result`.

    Returns:
        True when they match; False when `result` predates the record (no LOGS_KEY): its logs are unverified.

    Raises:
        CorruptFileError: a recorded log is missing, truncated, torn or changed, or a log appeared that the
            finished run did not write (one line ending with `fix`).
    """
    recorded = result.get(LOGS_KEY)
    if recorded is None:
        return False
    if not isinstance(recorded, dict):
        raise CorruptFileError(
            f"result file {run_dir / 'result.json'} has no valid record of its logs; {fix}"
        )
    found = log_stamps(run_dir)
    for name in sorted(set(recorded) | set(found)):
        want, got = recorded.get(name), found.get(name)
        if want != got:
            what = (
                "is missing"
                if got is None
                else "was not written by the finished run"
                if want is None
                else f"has {got['bytes']} bytes, sha256 {got['sha256'][:12]}…; result.json recorded "
                f"{want['bytes']} bytes, sha256 {want['sha256'][:12]}… (corrupt or edited)"
            )
            raise CorruptFileError(f"log {run_dir / name} {what}; {fix}")
    return True


def flatten(metrics: dict[str, Any], prefix: str = "", lists: bool = False) -> dict[str, float | int | str]:
    """Scalar leaves of a nested metrics dict, keys joined with '.'.

    Args:
        metrics: the nested dict.
        prefix: prepended to every key.
        lists: keep lists as compact JSON text (configs); by default they are left out (metrics).
    """
    out: dict[str, float | int | str] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + ".", lists))
        elif isinstance(v, bool | int | float | str):
            out[key] = v
        elif lists and isinstance(v, list | tuple):
            out[key] = json.dumps(v, separators=(",", ":"), default=str)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (blank lines skipped; a torn last line, left by a kill, dropped).

    Raises:
        SparsenetsError: a line other than the last is not a JSON object (one line naming it).
    """
    try:
        lines = path.read_bytes().decode().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptFileError(f"{path} is unreadable ({e}); move it aside") from None
    records = []
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            records.append(rec)
        elif i != len(lines) - 1:  # only the last line can be torn by a kill; anything else is damage
            raise CorruptFileError(f"{path} line {i + 1} is not a JSON record (corrupt); move it aside")
    return records
