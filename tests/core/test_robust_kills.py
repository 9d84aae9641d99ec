"""Kills at chosen and random points of the toy experiment (before the first checkpoint, mid-line, between a
checkpoint's two files, before a rename, inside rotation, before result.json): every rerun ends with the metrics,
metrics.jsonl and checkpoint files of an uninterrupted run, and no debris. Ten kills in all."""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sparsenets import runs

RNG = random.Random(30)  # the random kill points, fixed so a failure can be replayed


def _die() -> None:
    os._exit(9)


def _after_call(module, name: str, k: int, before: bool = False) -> None:
    """Make the k-th call of module.name end the process (after the call, or `before` it)."""
    inner, calls = getattr(module, name), []

    def wrapped(*args, **kw):
        calls.append(1)
        if before and len(calls) == k:
            _die()
        out = inner(*args, **kw)
        if len(calls) == k:
            _die()
        return out

    setattr(module, name, wrapped)


def _log_after(k: int) -> None:
    from sparsenets.train import loop

    _after_call(loop.Trainer, "_log", k)


def _log_torn(k: int) -> None:
    from sparsenets.train import loop

    calls = []

    def torn(self, record):
        calls.append(1)
        line = json.dumps(record) + "\n"
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(line if len(calls) < k else line[: len(line) // 2])
        if len(calls) == k:
            _die()

    loop.Trainer._log = torn


def _in_rotation(k: int) -> None:
    from sparsenets.train import checkpoint

    _after_call(checkpoint, "_delete", k)  # odd k: a sidecar deleted, its tensor file not yet


def _before_sidecar(k: int) -> None:
    from sparsenets.train import checkpoint

    _after_call(checkpoint, "atomic_write_bytes", k, before=True)  # the tensor file is already in place


def _before_rename(k: int) -> None:
    from sparsenets import files

    _after_call(files, "_fsync_replace", k, before=True)  # a complete temp file, never renamed


def _before_result(k: int) -> None:
    execute = sys.modules[
        "sparsenets.runs.execute"
    ]  # the module (the package exports a function of that name)
    _after_call(execute, "atomic_write_bytes", k, before=True)  # call 1 writes run.json, call 2 result.json


def _killed(out: Path, patch: Callable[[int], None], k: int) -> None:
    """Run the toy into `out` in a forked process that `patch` kills at its k-th point."""
    pid = os.fork()
    if pid == 0:
        try:
            patch(k)
            runs.execute("toy", out=out)
        finally:
            os._exit(0)  # reached only if the kill point was never hit
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, f"{patch.__name__}({k}) never reached its kill point"
    assert not (out / "result.json").exists() or patch is _before_result


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict]:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("clean") / "run"
    return out, runs.execute("toy", out=out)[1]


KILLS = [  # (kill points applied in turn to one folder, each followed by a rerun at the end)
    [(_log_after, 1)],  # step 5: before the first checkpoint (step 10)
    [(_log_torn, 3)],  # the line of step 15 half written
    [(_in_rotation, 1)],  # saving step 30 drops step 10: killed between its sidecar and its tensor file
    [(_in_rotation, RNG.choice([3, 5, 7]))],  # a later rotation (7: the one of the final save)
    [(_before_sidecar, RNG.randint(1, 6))],  # a tensor file renamed, its sidecar never written
    [(_before_rename, 1)],  # run.json's temp file, in the run folder itself
    [(_before_rename, RNG.randint(2, 13))],  # a tensor file's or a sidecar's temp file
    [(_before_result, 2)],  # trained and checkpointed, result.json not written
    [(_log_after, RNG.randint(2, 20)), (_log_torn, RNG.randint(2, 20))],  # killed twice in one folder
]


@pytest.mark.parametrize("kills", KILLS, ids=lambda ks: "+".join(f"{p.__name__}-{k}" for p, k in ks))
def test_rerun_after_kills_equals_the_uninterrupted_run(clean, tmp_path, kills) -> None:
    out = tmp_path / "run"
    for patch, k in kills:
        _killed(out, patch, k)
    _, resumed = runs.execute("toy", out=out)
    assert resumed["metrics"] == clean[1]["metrics"]
    assert (out / "metrics.jsonl").read_bytes() == (clean[0] / "metrics.jsonl").read_bytes()
    assert _files(out) == _files(clean[0]), "no orphan tensor file, no temp file, nothing missing"
    assert json.loads((out / "result.json").read_text())["metrics"] == clean[1]["metrics"]
