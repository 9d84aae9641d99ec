"""SIGKILL from outside during `sparsenets run mlp-mnist`, then the same command: it resumes and ends with identical
metrics and log. (Kills at seeded points of two experiments: test_kill_experiments.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETS = [  # 80 steps of a small MLP: the kill lands after the checkpoint of step 20, while training goes on
    *("--set", "hidden=[64]", "--set", "train_limit=2560", "--set", "batch_size=32", "--set", "epochs=1"),
    *("--set", "checkpoint_every=10", "--set", "eval_every=20"),
]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "sparsenets", "run", "mlp-mnist", *SETS, "--out", str(out)]


@pytest.mark.slow
def test_sigkill_then_rerun_matches_uninterrupted(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    subprocess.run(_cmd(tmp_path / "clean"), check=True, env=env, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list((killed / "checkpoints").glob("ckpt-000000020.json")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "result.json").exists(), "the run was killed before it finished"
    subprocess.run(_cmd(killed), check=True, env=env, timeout=600)
    clean = json.loads((tmp_path / "clean" / "result.json").read_text())
    resumed = json.loads((killed / "result.json").read_text())
    assert resumed["metrics"] == clean["metrics"]
    assert (killed / "metrics.jsonl").read_text() == (tmp_path / "clean" / "metrics.jsonl").read_text()
