"""Every file the runner writes is verified when read: checkpoints (tensors and sidecar), checksummed JSON, the
JSON-lines log as the report reads it, and the run-folder lock."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsenets.errors import CheckpointError, SparsenetsError
from sparsenets.files import (
    CorruptFileError,
    FolderBusyError,
    atomic_write_bytes,
    checksum_ok,
    dead_temp_files,
    lock_folder,
    read_checked_json,
    with_checksum,
)
from sparsenets.report.runs import load_run, read_jsonl
from sparsenets.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, sweep_orphans


def _state(step: int) -> dict:
    torch.manual_seed(step)
    model = torch.nn.Linear(4, 3)
    return {"model": model.state_dict(), "step": step, "history": [{"step": step, "acc": 0.5}]}


def _flip(path: Path, pos: int, bit: int = 0) -> bytes:
    data = bytearray(path.read_bytes())
    data[pos] ^= 1 << bit
    path.write_bytes(bytes(data))
    return bytes(data)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _resign(sidecar: Path, **changes) -> None:
    """Rewrite a sidecar with `changes` and a valid self-hash: what a crafted (not a damaged) file looks like."""
    from sparsenets.files import sha256_json

    meta = json.loads(sidecar.read_text())
    meta.pop("sidecar_sha256")
    meta.update(changes)
    meta["sidecar_sha256"] = sha256_json(meta)
    sidecar.write_text(json.dumps(meta))


# ----------------------------------------------------------------------------------------------- checkpoints
def test_a_bit_flip_in_any_byte_of_a_sidecar_is_detected_and_nothing_is_deleted(tmp_path) -> None:
    sidecar = save_checkpoint(tmp_path, 20, _state(20))
    good, before = sidecar.read_bytes(), _names(tmp_path)
    step_pos = good.index(b'"step": 20') + len('"step": ')  # the flip that once cut metrics.jsonl back
    for pos, bit in [(step_pos, 0), (step_pos + 1, 1), *((p, p % 8) for p in range(len(good)))]:  # every byte
        _flip(sidecar, pos, bit)
        with pytest.raises(CheckpointError, match="corrupt") as err:
            load_checkpoint(sidecar)
        assert "\n" not in str(err.value)
        sidecar.write_bytes(good)
    assert _names(tmp_path) == before, "a corrupt checkpoint is reported, never deleted"
    assert load_checkpoint(sidecar)[0] == 20


def test_tensor_file_flips_and_truncation_are_detected(tmp_path) -> None:
    sidecar = save_checkpoint(tmp_path, 5, _state(5))
    st = tmp_path / "ckpt-000000005.safetensors"
    good = st.read_bytes()
    for pos in random.Random(1).sample(range(len(good)), 10):
        _flip(st, pos, pos % 8)
        with pytest.raises(CheckpointError, match="sha256"):
            load_checkpoint(sidecar)
        st.write_bytes(good)
    st.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(sidecar)
    sidecar.write_bytes(sidecar.read_bytes()[:-7])  # a truncated sidecar
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(sidecar)
    assert _names(tmp_path) == ["ckpt-000000005.json", "ckpt-000000005.safetensors"]


@pytest.mark.parametrize(
    "tensors", ["../../outside.safetensors", "/tmp/x.safetensors", "ckpt-000000001.safetensors"]
)
def test_a_sidecar_names_only_its_own_tensor_file(tmp_path, tensors) -> None:
    run = tmp_path / "run" / "checkpoints"
    save_checkpoint(run, 1, _state(1))
    sidecar = save_checkpoint(run, 2, _state(2))
    torch.save({"x": 1}, tmp_path / "outside.safetensors")
    _resign(sidecar, tensors=tensors)
    with pytest.raises(CheckpointError, match="not its own"):
        load_checkpoint(sidecar)


def test_a_sidecar_or_tensor_file_of_another_step_is_refused(tmp_path) -> None:
    a, b = save_checkpoint(tmp_path, 10, _state(10)), save_checkpoint(tmp_path, 20, _state(20))
    b.write_bytes(a.read_bytes())  # a well-formed sidecar under another step's name
    with pytest.raises(CheckpointError, match="not its own"):
        load_checkpoint(b)
    c = save_checkpoint(tmp_path, 30, _state(30), keep=5)
    st10, st30 = tmp_path / "ckpt-000000010.safetensors", tmp_path / "ckpt-000000030.safetensors"
    st30.write_bytes(st10.read_bytes())
    from sparsenets.files import sha256_file

    _resign(c, sha256=sha256_file(st30))  # its hash fixed up: only the tensor file's own stamp tells
    with pytest.raises(CheckpointError, match="do not belong together"):
        load_checkpoint(c)


def test_sweep_removes_only_debris_of_dead_writers(tmp_path) -> None:
    for step in (10, 20):
        save_checkpoint(tmp_path, step, _state(step))
    (tmp_path / "ckpt-000000010.json").write_text("{damaged")  # corrupt but not debris: kept
    (tmp_path / "ckpt-000000005.safetensors").write_bytes(b"orphan of a kill inside rotation")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f".ckpt-000000030.json.{dead_pid}.abcd1234.tmp").write_bytes(b"x")
    (tmp_path / f".ckpt-000000030.json.{os.getpid()}.abcd1234.tmp").write_bytes(b"x")  # a live writer's
    removed = sorted(p.name for p in sweep_orphans(tmp_path))
    assert removed == [f".ckpt-000000030.json.{dead_pid}.abcd1234.tmp", "ckpt-000000005.safetensors"]
    assert _names(tmp_path) == [
        f".ckpt-000000030.json.{os.getpid()}.abcd1234.tmp",
        "ckpt-000000010.json",
        "ckpt-000000010.safetensors",
        "ckpt-000000020.json",
        "ckpt-000000020.safetensors",
    ]
    assert latest_checkpoint(tmp_path).name == "ckpt-000000020.json"


# ------------------------------------------------------------------------------------------- JSON and JSONL
def test_checksummed_json_detects_flips_and_truncation(tmp_path) -> None:
    path = tmp_path / "result.json"
    obj = with_checksum({"metrics": {"accuracy": 0.9375, "loss": 0.25}, "seed": 3, "t": (1, 2)})
    assert obj["t"] == [1, 2] and checksum_ok(obj)
    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())
    good = path.read_bytes()
    assert read_checked_json(path, "result file", "rerun") == obj
    digit = good.index(b"0.9375") + 3  # 0.9375 -> 0.9275: still valid JSON, a silently changed result
    for pos, bit in [(digit, 0), *((p, p % 8) for p in range(len(good)))]:  # every byte, one bit each
        _flip(path, pos, bit)
        with pytest.raises(CorruptFileError, match="result file"):
            read_checked_json(path, "result file", "rerun")
        path.write_bytes(good)
    path.write_bytes(good[:-10])
    with pytest.raises(CorruptFileError, match="unreadable"):
        read_checked_json(path, "result file", "rerun")
    assert checksum_ok({"legacy": 1}), "a file written before checksums existed still reads"


def test_atomic_writes_use_unique_temp_names_and_leave_none(tmp_path) -> None:
    from sparsenets.files import _temp_path

    names = {_temp_path(tmp_path / "run.json").name for _ in range(50)}
    assert len(names) == 50 and all(str(os.getpid()) in n for n in names)
    atomic_write_bytes(tmp_path / "run.json", b"{}")
    assert _names(tmp_path) == ["run.json"] and dead_temp_files(tmp_path, "run") == []


def test_report_reads_a_torn_last_log_line_and_refuses_damage(tmp_path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 5, "loss": 1.0}\n{"step": 10, "loss": 0.5}\n{"step": 15, "lo')
    assert [r["step"] for r in read_jsonl(log)] == [5, 10]
    log.write_text('{"step": 5, "loss": 1.0}\n{"step": 1#, "loss": 0.5}\n{"step": 15, "loss": 0.2}\n')
    with pytest.raises(SparsenetsError, match="line 2"):
        read_jsonl(log)
    log.write_bytes(b'{"step": 5, "loss": 1.0}\n\xff\xfe\n')
    with pytest.raises(SparsenetsError, match="unreadable"):
        read_jsonl(log)


def test_report_result_json_damage_is_one_line(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    good = json.dumps(with_checksum({"experiment": "toy", "metrics": {"accuracy": 0.5}}))
    (run / "result.json").write_text(good)
    assert load_run(run).metrics == {"accuracy": 0.5}
    for bad in (good[: len(good) // 2], good.replace("0.5", "0.7"), "[1, 2]", b"\xff{}"):
        (run / "result.json").write_bytes(bad if isinstance(bad, bytes) else bad.encode())
        with pytest.raises(SparsenetsError) as err:
            load_run(run)
        assert "result.json" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------------- locks
def _hold_lock_in_child(folder: Path, ready: Path) -> int:
    pid = os.fork()
    if pid == 0:  # child: hold the lock until killed
        try:
            with lock_folder(folder, "run folder"):
                ready.write_text("1")
                time.sleep(60)
        finally:
            os._exit(0)
    while not ready.exists():
        time.sleep(0.01)
    return pid


def test_lock_refuses_a_second_process_and_is_taken_over_when_its_holder_dies(tmp_path) -> None:
    folder = tmp_path / "run"
    pid = _hold_lock_in_child(folder, tmp_path / "ready")
    try:
        busy = f"in use by another process \\(pid {pid}\\)"
        with pytest.raises(FolderBusyError, match=busy) as err, lock_folder(folder, "run folder"):
            pass
        assert "\n" not in str(err.value)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert (folder / ".lock").read_text() == str(pid), "a stale lock file naming a dead pid"
    with lock_folder(folder, "run folder"):  # taken over: the kernel dropped the dead holder's lock
        assert (folder / ".lock").read_text() == str(os.getpid())
    with lock_folder(folder, "run folder"):  # released at the end of the block
        pass


def test_lock_on_an_impossible_folder_is_one_clear_error(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SparsenetsError, match="cannot lock folder"), lock_folder(tmp_path / "file" / "run"):
        pass
