"""The runner on damaged run folders, two processes on one folder, and weights that turn NaN: one clear line and
exit 2 (nothing changed), or an exact recovery."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sparsenets import cli, runs
from sparsenets.errors import SparsenetsError
from sparsenets.files import checksum_ok
from sparsenets.train import Callback, TensorBatches, Trainer, latest_checkpoint
from tests.conftest import FAIL_AT, Crash, toy_task


@dataclass
class NanConfig:
    """The toy task with the weights set to NaN after step `nan_at` (its loss stays finite)."""

    steps: int = 30
    checkpoint_every: int = 10
    nan_at: int = -1


class NanAt(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def after_step(self, state) -> None:
        if state.step == self.at:
            with torch.no_grad():
                next(state.module.parameters()).fill_(float("nan"))


def _nan_trainer(cfg: NanConfig, run_dir: Path | None) -> Trainer:
    x, y = toy_task()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        TensorBatches(x, y, batch_size=32, seed=0),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        cfg.steps,
        eval_fn=lambda m: {"accuracy": float((m(x).argmax(-1) == y).float().mean())},
        callbacks=[NanAt(cfg.nan_at)],
        run_dir=run_dir,
        checkpoint_every=cfg.checkpoint_every,
        log_every=5,
        progress=False,
    )


def _run_nan(cfg: NanConfig, ctx: runs.RunContext) -> dict:
    return {"accuracy": _nan_trainer(cfg, ctx.dir).fit()[-1]["accuracy"]}


if "toy-nan" not in runs.REGISTRY:
    runs.experiment("toy-nan", NanConfig, description="toy task whose weights turn NaN")(_run_nan)


def _one_error_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sparsenets: error:"), err
    assert all(w in err[0] for w in words), err[0]
    return err[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict]:
    """An uninterrupted toy run: what every recovered run must equal."""
    out = tmp_path_factory.mktemp("clean") / "run"
    assert cli.main(["run", "toy", "--out", str(out)]) == 0
    return out, json.loads((out / "result.json").read_text())


def _finished_copy(clean: tuple[Path, dict], dest: Path) -> Path:
    for rel, data in _snapshot(clean[0]).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


# -------------------------------------------------------------------------------------------- damaged files
def test_result_json_has_a_checksum_and_a_reused_run_returns_exactly_it(clean) -> None:
    out, stored = clean
    assert checksum_ok(stored) and "checksum" in stored
    again_dir, again = runs.execute("toy", out=out)
    assert again_dir == out and again == stored


@pytest.mark.parametrize("damage", ["flip", "truncate", "torn"])
def test_damaged_result_json_is_one_line_exit_2_and_nothing_changes(clean, tmp_path, capsys, damage) -> None:
    out = _finished_copy(clean, tmp_path / "run")
    path, good = out / "result.json", (out / "result.json").read_bytes()
    pos = good.index(b'"accuracy": ') + len(b'"accuracy": ') + 3  # a digit: still valid JSON
    bad = {
        "flip": good[:pos] + bytes([good[pos] ^ 1]) + good[pos + 1 :],
        "truncate": good[: len(good) // 2],
        "torn": good[:-1],
    }[damage]
    path.write_bytes(bad)
    before = _snapshot(out)
    assert cli.main(["run", "toy", "--out", str(out)]) == 2
    _one_error_line(capsys, "result.json")
    assert cli.main(["report", str(out), "--out", str(tmp_path / "report")]) == 2
    _one_error_line(capsys, "result.json")
    assert _snapshot(out) == before


@pytest.mark.parametrize("damage", ["truncate", "flip-config"])
def test_damaged_run_json_is_one_line_exit_2(clean, tmp_path, capsys, damage) -> None:
    out = _finished_copy(clean, tmp_path / "run")
    good = (out / "run.json").read_bytes()
    bad = good[:-5] if damage == "truncate" else good.replace(b'"width": 8', b'"width": 9')
    (out / "run.json").write_bytes(bad)
    before = _snapshot(out)
    assert cli.main(["run", "toy", "--out", str(out)]) == 2
    _one_error_line(capsys, "run.json" if damage == "truncate" else "another config")
    assert _snapshot(out) == before


def test_flipped_step_in_the_newest_sidecar_is_one_line_and_the_log_is_kept(clean, tmp_path, capsys) -> None:
    out = _finished_copy(clean, tmp_path / "run")
    (out / "result.json").unlink()  # an unfinished run: the next command resumes from the newest checkpoint
    sidecar = latest_checkpoint(out / "checkpoints")
    sidecar.write_bytes(sidecar.read_bytes().replace(b'"step": 60', b'"step": 20', 1))
    before = _snapshot(out)
    assert cli.main(["run", "toy", "--out", str(out)]) == 2
    _one_error_line(capsys, "corrupt", sidecar.name)
    assert _snapshot(out) == before, "no log line cut, no checkpoint deleted"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_log_damaged_before_the_checkpoint_is_one_line(clean, tmp_path, capsys, damage) -> None:
    out = _finished_copy(clean, tmp_path / "run")
    (out / "result.json").unlink()
    log = out / "metrics.jsonl"
    good = log.read_bytes()
    pos = good.index(b'"loss": ') + 10
    log.write_bytes(good[:pos] + bytes([good[pos] ^ 1]) + good[pos + 1 :] if damage == "flip" else good[:pos])
    before = _snapshot(out)
    assert cli.main(["run", "toy", "--out", str(out)]) == 2
    _one_error_line(capsys, "metrics.jsonl", "truncated or changed")
    assert _snapshot(out) == before


def test_torn_last_log_line_is_dropped_on_resume(clean, tmp_path) -> None:
    out = tmp_path / "run"
    FAIL_AT["step"] = 37
    try:
        with pytest.raises(Crash):
            runs.execute("toy", out=out)
    finally:
        FAIL_AT["step"] = -1
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "split": "tr')  # what a kill in the middle of a write leaves
    _, resumed = runs.execute("toy", out=out)
    assert resumed["metrics"] == clean[1]["metrics"]
    assert (out / "metrics.jsonl").read_bytes() == (clean[0] / "metrics.jsonl").read_bytes()


# ------------------------------------------------------------------------------------------------ NaN weights
def test_nan_weights_on_a_checkpoint_step_are_never_checkpointed(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["run", "toy-nan", "--set", "nan_at=20", "--out", str(out)]) == 2
    _one_error_line(capsys, "NaN or inf by step 20")
    assert latest_checkpoint(out / "checkpoints").name == "ckpt-000000010.json"
    assert not (out / "result.json").exists()


def test_nan_weights_on_the_last_step_are_an_error_not_a_success(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["run", "toy-nan", "--set", "nan_at=30", "--out", str(out)]) == 2
    _one_error_line(capsys, "NaN or inf by step 30")
    assert latest_checkpoint(out / "checkpoints").name == "ckpt-000000020.json"
    assert not (out / "result.json").exists()
    logged = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert not [r for r in logged if r["split"] == "eval"], "no evaluation of NaN weights is logged"
    with pytest.raises(SparsenetsError, match="NaN or inf by step 30"):  # without a run folder too
        _nan_trainer(NanConfig(nan_at=30), None).fit()


# --------------------------------------------------------------------------------- two processes, one folder
def _start_blocked_run(out: Path, gate: Path, quick: bool = True) -> int:
    """Fork a process that runs the toy into `out` and waits inside its run (after its second log line) until
    `gate`/go exists; returns once it holds the folder."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            from sparsenets.train import loop

            log, calls = loop.Trainer._log, []

            def blocking_log(self, record):
                log(self, record)
                calls.append(1)
                if len(calls) == 2:
                    (gate / "ready").write_text("1")
                    while not (gate / "go").exists():
                        time.sleep(0.01)

            loop.Trainer._log = blocking_log
            code = cli.main(["run", "toy", *(["--quick"] if quick else []), "--out", str(out)])
        finally:
            os._exit(code)
    deadline = time.time() + 30
    while not (gate / "ready").exists() and time.time() < deadline:
        time.sleep(0.01)
    return pid


def test_a_second_process_on_a_running_folder_gets_one_line_and_the_folder_stays_consistent(
    tmp_path, capsys
) -> None:
    out, gate = tmp_path / "run", tmp_path
    pid = _start_blocked_run(out, gate)
    try:
        assert cli.main(["run", "toy", "--quick", "--out", str(out)]) == 2  # the same config
        _one_error_line(capsys, "in use by another process", str(pid))
        assert cli.main(["run", "toy", "--quick", "--set", "width=4", "--out", str(out)]) == 2  # another
        _one_error_line(capsys, "in use by another process")
    finally:
        (gate / "go").write_text("1")
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    _, reference = runs.execute("toy", quick=True, out=tmp_path / "reference")
    result = json.loads((out / "result.json").read_text())
    assert checksum_ok(result) and result["metrics"] == reference["metrics"]
    assert json.loads((out / "run.json").read_text())["config"]["width"] == 8
    assert (out / "metrics.jsonl").read_bytes() == (tmp_path / "reference" / "metrics.jsonl").read_bytes()
    assert not [p for p in out.rglob("*.tmp")]


def test_the_lock_of_a_killed_run_is_taken_over_and_the_run_resumes_exactly(clean, tmp_path) -> None:
    out, gate = tmp_path / "run", tmp_path
    pid = _start_blocked_run(out, gate, quick=False)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert (out / ".lock").read_text() == str(pid)
    _, resumed = runs.execute("toy", out=out)
    assert resumed["metrics"] == clean[1]["metrics"]
    assert (out / "metrics.jsonl").read_bytes() == (clean[0] / "metrics.jsonl").read_bytes()
