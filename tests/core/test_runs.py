"""Run folders, config overrides, reuse and resume, result.json, and the CLI's one-line errors."""

from __future__ import annotations

import json

import pytest

from sparsenets import cli, runs
from sparsenets.errors import ConfigError
from tests.conftest import FAIL_AT, Crash


def test_set_parses_types_and_rejects_unknown_keys(toy_name) -> None:
    exp = runs.get(toy_name)
    cfg = runs.make_config(exp, quick=True, sets=["lr=0.5", "width=4"])
    assert (cfg.steps, cfg.lr, cfg.width) == (20, 0.5, 4)
    with pytest.raises(ConfigError, match="did you mean width"):
        runs.make_config(exp, sets=["widht=3"])
    with pytest.raises(ConfigError, match="expected a value of type int"):
        runs.make_config(exp, sets=["width=wide"])
    with pytest.raises(ConfigError, match="key=value"):
        runs.make_config(exp, sets=["width"])


def test_preset_applies_after_quick_and_before_set(toy_name) -> None:
    exp = runs.get(toy_name)
    cfg = runs.make_config(exp, quick=True, preset="wide", sets=["lr=0.5"])
    assert (cfg.steps, cfg.width, cfg.lr) == (20, 16, 0.5)  # quick, then the preset, then --set
    assert runs.make_config(exp, preset="wide").lr == 0.05
    with pytest.raises(ConfigError, match="no preset 'narrow' \\(its presets: wide\\)"):
        runs.make_config(exp, preset="narrow")
    with pytest.raises(TypeError, match="preset 'bad' of 'toy2' name unknown fields \\['widht'\\]"):
        runs.experiment("toy2", type(runs.make_config(exp)), presets={"bad": {"widht": 3}})(lambda c, x: {})
    assert "toy2" not in runs.REGISTRY


def test_preset_run_is_the_same_run_as_its_sets(toy_name, tmp_path) -> None:
    # the folder is identified by the config, so the preset and the equivalent --set flags reuse one result
    first, res = runs.execute(toy_name, quick=True, out=tmp_path / "r", preset="wide")
    again, res2 = runs.execute(toy_name, quick=True, out=tmp_path / "r", sets=["width=16", "lr=0.05"])
    assert first == again and res["metrics"] == res2["metrics"] and res["config"]["width"] == 16


def test_unknown_experiment_suggests_names(toy_name) -> None:
    with pytest.raises(ConfigError, match="did you mean toy"):
        runs.get("toyy")


def test_run_writes_result_and_is_reused(tmp_path, toy_name) -> None:
    run_dir, _ = runs.execute(toy_name, quick=True, root=tmp_path, seed=3)
    assert run_dir.name.startswith("toy-") and run_dir.parent == tmp_path
    stored = json.loads((run_dir / "result.json").read_text())
    for key in ("experiment", "config", "metrics", "seconds", "seed", "versions"):
        assert key in stored
    assert stored["seed"] == 3 and stored["config"]["steps"] == 20
    assert set(stored["versions"]) >= {"python", "torch", "sparsenets", "git_commit"}
    again_dir, again = runs.execute(toy_name, quick=True, root=tmp_path, seed=3)
    assert again_dir == run_dir and again == stored
    other, _ = runs.execute(toy_name, quick=True, root=tmp_path, seed=4)
    assert other != run_dir, "another seed gets another folder"


def test_crashed_run_resumes_to_the_same_result(tmp_path, toy_name) -> None:
    _, clean = runs.execute(toy_name, out=tmp_path / "clean")
    FAIL_AT["step"] = 35
    try:
        with pytest.raises(Crash):
            runs.execute(toy_name, out=tmp_path / "crash")
    finally:
        FAIL_AT["step"] = -1
    assert not (tmp_path / "crash" / "result.json").exists()
    _, resumed = runs.execute(toy_name, out=tmp_path / "crash")
    assert resumed["metrics"] == clean["metrics"]
    assert clean["metrics"]["accuracy"] > 0.8


def test_cli_errors_are_one_line_exit_2(tmp_path, toy_name, capsys) -> None:
    assert cli.main(["run", "no-such-thing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown experiment" in err[0]
    assert cli.main(["run", toy_name, "--set", "bogus=1", "--root", str(tmp_path)]) == 2
    assert "no config key 'bogus'" in capsys.readouterr().err
    assert cli.main(["run", toy_name, "--preset", "narrow", "--root", str(tmp_path)]) == 2
    assert "no preset 'narrow'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "a rejected config writes nothing"


def test_cli_preset_runs_and_is_listed(tmp_path, toy_name, capsys) -> None:
    assert cli.main(["run", "--list"]) == 0
    assert "--preset wide" in capsys.readouterr().out
    assert cli.main(["run", toy_name, "--quick", "--preset", "wide", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text())["config"]["width"] == 16


def test_cli_corrupt_checkpoint_is_exit_2_and_keeps_files(tmp_path, toy_name, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["run", toy_name, "--out", str(out)]) == 0
    (out / "result.json").unlink()
    ckpt = sorted((out / "checkpoints").glob("*.safetensors"))[-1]
    ckpt.write_bytes(b"garbage")
    before = sorted(p.name for p in out.rglob("*"))
    assert cli.main(["run", toy_name, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha256" in err[0]
    assert sorted(p.name for p in out.rglob("*")) == before, "nothing in the run folder is lost"


def test_out_folder_of_another_config_is_refused(tmp_path, toy_name) -> None:
    runs.execute(toy_name, quick=True, out=tmp_path / "r")
    with pytest.raises(ConfigError, match="another config"):
        runs.execute(toy_name, out=tmp_path / "r")


def test_out_folder_written_before_a_config_key_existed_resumes_at_that_keys_default(
    tmp_path, toy_name
) -> None:
    out = tmp_path / "r"
    _, first = runs.execute(toy_name, quick=True, out=out)
    ident = json.loads((out / "run.json").read_text())
    del ident["config"]["width"]  # as if `width` were added to the Config class after this run
    (out / "run.json").write_text(json.dumps(ident))
    _, again = runs.execute(toy_name, quick=True, out=out)  # width at its default: the same run
    assert again == first
    with pytest.raises(ConfigError, match="another config"):  # width set to something else: another run
        runs.execute(toy_name, quick=True, out=out, sets=["width=9"])


def test_cli_missing_dataset_is_exit_2_naming_the_install_command(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("DEB_ROOT", str(tmp_path / "empty-root"))
    assert cli.main(["run", "mlp-mnist", "--quick", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sparsenets data install mnist" in err[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_map_yields_every_index_once_with_its_result(workers: int) -> None:
    import math

    args = [4.0, 9.0, 16.0]
    got = dict(runs.pool_map(math.sqrt, args, workers))
    assert got == {0: 2.0, 1: 3.0, 2: 4.0}


def _timed_sleep(seconds: float) -> tuple[float, float]:
    """A pool job that reports when it ran (module level, so spawned workers can import it)."""
    import time

    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def test_pool_map_starts_a_dependent_job_when_its_dependency_ends_not_after_the_whole_phase() -> None:
    # job 2 needs job 1 only: it must start after job 1 ends and finish long before the slow job 0 does
    got = dict(runs.pool_map(_timed_sleep, [6.0, 0.2, 0.2], workers=2, after=[[], [], [1]]))
    (_, end0), (_, end1), (start2, end2) = got[0], got[1], got[2]
    assert start2 >= end1
    assert end2 < end0 - 2.0


@pytest.mark.parametrize("after", [[[], [1]], [[], []] * 2, [[], [-1]]])
def test_pool_map_rejects_dependencies_on_later_jobs_or_a_wrong_count(after) -> None:
    with pytest.raises(ConfigError, match="earlier jobs"):
        list(runs.pool_map(abs, [1, 2], 2, after))


# Run identities of every experiment's default and --quick config (seed 0), as they were before the one-home
# refactor: a config key renamed, dropped or re-defaulted by accident changes a hash and strands old run folders.
IDENTITIES = {
    "grokking-tickets": ("f0357386", "b5a74677"),
    "grokking-tickets-mnist": ("06bd6612", "77dbb1c6"),
    "grokking-tickets-sweep": ("5f84cda8", "078a10cc"),
    "grokking-tickets-transformer": ("fda1ac03", "894ca19f"),
    "mlp-mnist": ("ea5c7100", "6964b0e2"),
    "sparsey-mechanics": ("063a0770", "4cb33c53"),
    "sparsey-mnist": ("6048f654", "129da6bc"),
    "sparsey-sequences": ("1d72800e", "4bb2e0bb"),
    "sst-charlm": ("9736f9fb", "52fe3aa3"),
    "sst-hyperbolic-graph": ("47c759a3", "bd165d0b"),
    "sst-translation": ("d1bd27e9", "fe98de53"),
    "wgsef-lenet5-mnist": ("b331ceb6", "c09940c5"),
    "wgsef-resnet18-fmnist": ("db97c3df", "c36360b1"),
    "wgsef-vgg-fmnist": ("5335cfd1", "821e436f"),
}


def test_every_experiment_keeps_its_run_identity() -> None:
    reg = runs.discover()
    for name, (default, quick) in IDENTITIES.items():
        exp = reg[name]
        assert runs.config_hash(name, runs.make_config(exp), 0) == default, name
        assert runs.config_hash(name, runs.make_config(exp, quick=True), 0) == quick, name


def test_pool_workers_end_when_their_parent_is_killed() -> None:
    """SIGKILL of a study's process must not leave its spawned pool workers running as orphans."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import time, sparsenets.runs as r\n"
        "print('ready', flush=True)\n"
        "list(r.pool_map(time.sleep, [60.0, 60.0], workers=2))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
    deadline, workers = time.time() + 60, []
    while time.time() < deadline and len(workers) < 2:  # the two spawned workers (plus the resource tracker)
        out = subprocess.run(
            ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(parent.pid)], capture_output=True, text=True
        )
        workers = [int(line.split()[0]) for line in out.stdout.splitlines() if "multiprocessing-fork" in line]
        time.sleep(0.2)
    assert len(workers) == 2, "the pool never started its workers"
    time.sleep(3.0)  # let the workers finish importing and start their watchers
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [w for w in alive if _running(w)]
    for w in alive:  # never leave them behind, even when the test fails
        os.kill(w, signal.SIGKILL)
    assert not alive, f"pool workers {alive} outlived their killed parent"


def _running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
