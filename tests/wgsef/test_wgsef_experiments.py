"""End to end: the WGSEF LeNet experiment in --quick size on real MNIST (every method, compaction, report)."""

from __future__ import annotations

import json

import pytest
import torch

from sparsenets import runs
from sparsenets.compact import count_params, load_compact
from sparsenets.errors import ConfigError
from tests.wgsef.wgsef_helpers import first_seed, run_killed


def test_wgsef_lenet_quick_run_ends_exact_k_and_compacts(tmp_path) -> None:
    run_dir, _ = runs.execute("wgsef-lenet5-mnist", quick=True, root=tmp_path)
    per_seed = json.loads((run_dir / "per_seed.json").read_text())
    for seed in per_seed:
        for method in ("wgsef", "group_lasso", "magnitude", "tp_groupnorm"):
            assert seed[method]["kept"] == [5, 12, 125]  # width 0.5: (10, 25, 250) groups, keep ratio 0.5
            assert seed[method]["max_abs_diff"] <= 1e-4
        assert seed["wgsef"]["flops"] < seed["dense"]["flops"] / 3
    report = (run_dir / "report.md").read_text()
    assert "| wgsef |" in report and (run_dir / "figures" / "accuracy_vs_flops.png").exists()
    assert (run_dir / "figures" / "kept_per_layer.png").exists()
    # the compacted WGSEF model of each seed is saved, and latency was measured from the saved pair
    small = load_compact(run_dir / "seed-0" / "wgsef-compact")
    assert count_params(small) == per_seed[0]["wgsef"]["params"]
    assert per_seed[0]["measure"]["params_compact"] == per_seed[0]["wgsef"]["params"]


def test_wgsef_study_resumes_finished_seeds_and_runs_missing_ones_in_workers(tmp_path) -> None:
    out = tmp_path / "run"
    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "workers=2"]
    runs.execute("wgsef-lenet5-mnist", quick=True, out=out, sets=sets)
    rows = json.loads((out / "per_seed.json").read_text())
    assert [r["seed"] for r in rows] == [0, 1]
    # a killed run: seed 0 finished (marked so a re-train would show), seed 1 lost, no result yet
    rows[0]["dense"]["accuracy"] = 123.0
    (out / "per_seed.json").write_text(json.dumps(rows[:1]))
    (out / "result.json").unlink()
    _, result = runs.execute("wgsef-lenet5-mnist", quick=True, out=out, sets=sets)
    again = json.loads((out / "per_seed.json").read_text())
    assert [r["seed"] for r in again] == [0, 1]
    assert again[0]["dense"]["accuracy"] == 123.0  # reused, not re-trained
    assert again[1]["dense"]["accuracy"] == rows[1]["dense"]["accuracy"]  # re-run, same CPU result
    assert result["metrics"]["dense"]["accuracy_mean"] == (123.0 + rows[1]["dense"]["accuracy"]) / 2


def test_wgsef_study_with_only_dense_and_wgsef_and_a_clear_error_without_wgsef(tmp_path) -> None:
    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "seeds=1"]
    run_dir, result = runs.execute(
        "wgsef-lenet5-mnist", quick=True, root=tmp_path, sets=[*sets, 'methods=["dense","wgsef"]']
    )
    assert set(result["metrics"]) >= {"dense", "wgsef"} and "magnitude" not in result["metrics"]
    report = (run_dir / "report.md").read_text()
    assert "smoke run — no verdict" in report and "not met" not in report  # a quick run judges no claim
    with pytest.raises(ConfigError, match="methods must name dense, wgsef"):
        runs.execute("wgsef-lenet5-mnist", quick=True, root=tmp_path, sets=[*sets, 'methods=["dense"]'])


def test_wgsef_seed_killed_mid_way_resumes_at_its_unfinished_methods(tmp_path, monkeypatch) -> None:
    """A kill during the magnitude baseline (the last job: it starts from dense) keeps every other method (one
    method-NAME.json each, plus the dense snapshot); the re-run trains only magnitude, from the saved snapshot,
    with the uninterrupted run's numbers."""
    from sparsenets.experiments.wgsef import methods as wgsef_methods

    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "seeds=1"]
    full = first_seed(tmp_path / "a", sets)

    def killed(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "b"
    run_killed(out, sets, monkeypatch, wgsef_methods, "_magnitude", killed)
    seed_dir = out / "seed-0"
    recorded = sorted(p.name for p in seed_dir.glob("method-*.json"))
    assert recorded == [f"method-{m}.json" for m in ("dense", "group_lasso", "tp_groupnorm", "wgsef")]
    assert (seed_dir / "wgsef-compact.json").exists() and (seed_dir / "dense-snapshot.safetensors").exists()
    assert not (out / "per_seed.json").exists()
    for method in ("wgsef", "tp_groupnorm"):  # marked: a re-train would overwrite them
        rec = json.loads((seed_dir / f"method-{method}.json").read_text())
        rec[method]["accuracy"] = 123.0
        (seed_dir / f"method-{method}.json").write_text(json.dumps(rec))
    again = first_seed(out, sets)
    assert again["wgsef"]["accuracy"] == again["tp_groupnorm"]["accuracy"] == 123.0
    for method in ("dense", "group_lasso", "magnitude"):
        assert again[method]["accuracy"] == full[method]["accuracy"]


def test_wgsef_seed_progress_file_that_is_corrupt_gets_one_clear_error(tmp_path) -> None:
    from sparsenets.errors import SparsenetsError
    from sparsenets.experiments.wgsef.progress import load_progress

    for name in ("method-wgsef.json", "methods.json"):  # methods.json: runs from before session 7
        (tmp_path / name).write_text("{not json")
        with pytest.raises(SparsenetsError, match="delete it to re-run that part of seed 3"):
            load_progress(tmp_path, 3)
        (tmp_path / name).write_text('{"seed": 1}')
        with pytest.raises(SparsenetsError, match="belongs to seed 1, not 3"):
            load_progress(tmp_path, 3)
        (tmp_path / name).unlink()
    (tmp_path / "methods.json").write_text('{"seed": 3, "dense": {"accuracy": 1.0}}')
    (tmp_path / "method-wgsef.json").write_text('{"seed": 3, "wgsef": {"accuracy": 2.0}}')
    assert load_progress(tmp_path, 3) == {"seed": 3, "dense": {"accuracy": 1.0}, "wgsef": {"accuracy": 2.0}}


def test_wgsef_magnitude_alone_without_dense_gets_one_clear_error(tmp_path) -> None:
    from sparsenets.errors import SparsenetsError
    from sparsenets.experiments.wgsef.lenet5_mnist import Config
    from sparsenets.experiments.wgsef.methods import run_seed
    from sparsenets.models.cnn import LeNet5

    data = (torch.zeros(8, 1, 28, 28), torch.zeros(8, dtype=torch.long))
    with pytest.raises(SparsenetsError, match="run dense first"):
        run_seed(Config(), LeNet5, data, data, 0, print, save_dir=tmp_path, only=["magnitude"])


def test_wgsef_dense_snapshot_that_is_corrupt_gets_one_clear_error(tmp_path) -> None:
    from sparsenets.errors import SparsenetsError
    from sparsenets.experiments.wgsef.progress import load_snapshot
    from sparsenets.models.cnn import LeNet5

    (tmp_path / "dense-snapshot.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(SparsenetsError, match="cannot load the dense snapshot"):
        load_snapshot(LeNet5, tmp_path)


def test_wgsef_method_killed_mid_training_resumes_from_its_last_epoch(tmp_path, monkeypatch) -> None:
    """Each training phase checkpoints every epoch: a kill in WGSEF's third epoch keeps the checkpoint of
    epoch 2, the re-run continues from it, and every method ends as in an uninterrupted run; recorded methods
    leave no checkpoints behind."""
    from sparsenets.optim import ProxOptimizer

    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "seeds=1", "epochs=3"]
    full = first_seed(tmp_path / "a", sets)
    real_step, calls = ProxOptimizer.step, []

    def step(self, closure=None):  # WGSEF is the first method with proximal steps (2 per epoch here)
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, closure)

    out = tmp_path / "b"
    run_killed(out, sets, monkeypatch, ProxOptimizer, "step", step)
    seed_dir = out / "seed-0"
    assert [p.name for p in seed_dir.glob("method-*.json")] == ["method-dense.json"]
    assert sorted(p.name for p in (seed_dir / "train-wgsef-train" / "checkpoints").glob("*.json"))[
        -1
    ].startswith("ckpt-000000004")
    counted: list[int] = []

    def counting(self, closure=None):
        counted.append(1)
        return real_step(self, closure)

    monkeypatch.setattr(ProxOptimizer, "step", counting)
    again = first_seed(out, sets)
    monkeypatch.undo()
    # proximal steps of an uninterrupted run: WGSEF 6, group lasso 6 (every fine-tune steps plain SGD on the
    # compacted model); the resumed WGSEF skips the 4 steps its checkpoint holds
    assert len(counted) == 12 - 4
    for method in ("dense", "wgsef", "group_lasso", "magnitude", "tp_groupnorm"):
        assert again[method]["accuracy"] == full[method]["accuracy"], method
    assert again["wgsef"]["kept_before_select"] == full["wgsef"]["kept_before_select"]
    assert not list(seed_dir.glob("train-*/checkpoints"))


def test_paired_differences_are_per_seed_wgsef_minus_baseline_and_skip_missing_methods() -> None:
    from sparsenets.experiments.wgsef.report import paired_differences

    rows = [
        {"wgsef": {"accuracy": 99.0}, "magnitude": {"accuracy": 98.0}, "group_lasso": {"accuracy": 99.5}},
        {"wgsef": {"accuracy": 98.0}, "magnitude": {"accuracy": 98.0}},
    ]
    got = paired_differences(rows, ["magnitude", "group_lasso", "tp_groupnorm"])
    assert set(got) == {"magnitude"}  # group lasso is missing on seed 2, TP everywhere
    assert got["magnitude"][0] == pytest.approx(0.5) and got["magnitude"][1] == pytest.approx(0.5**0.5)


def test_wgsef_resnet18_quick_run_keeps_exactly_k_per_coupled_group_and_compacts(tmp_path) -> None:
    sets = ["seeds=1", 'methods=["dense","wgsef","magnitude"]']
    run_dir, _ = runs.execute("wgsef-resnet18-fmnist", quick=True, root=tmp_path, sets=sets)
    seed = json.loads((run_dir / "per_seed.json").read_text())[0]
    # width 1/16: 4, 8, 16, 32 channels per stage; 12 coupled groups (4 residual streams, 8 inner convs), keep 0.4
    for method in ("wgsef", "magnitude"):
        assert seed[method]["kept"] == [2, 2, 2, 3, 3, 3, 6, 6, 6, 13, 13, 13]
        assert seed[method]["max_abs_diff"] <= 1e-4
    assert seed["wgsef"]["flops"] < seed["dense"]["flops"] / 4
    assert count_params(load_compact(run_dir / "seed-0" / "wgsef-compact")) == seed["wgsef"]["params"]
