"""End-to-end: the SST experiments run on real data at their quick size and report what they promise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sparsenets.runs import execute

torch.set_num_threads(1)


@pytest.mark.slow
def test_sst_charlm_quick_on_kjv(tmp_path: Path) -> None:
    run_dir, result = execute(
        "sst-charlm", quick=True, out=tmp_path / "run", sets=["d=16", "steps=12", "eval_every=6"]
    )
    m = result.get("metrics", result)
    assert {"bpc_full_r1", "bpc_sst_r1", "bpc_lora_r1", "gap_closed_r1", "max_merge_bpc_change"} <= set(m)
    assert m["max_merge_bpc_change"] < 1e-4  # exported dense models reproduce the validation loss
    assert all(2.0 < m[f"bpc_{k}_r1"] < 7.0 for k in ("full", "sst", "lora", "relora"))
    assert (run_dir / "report.md").read_text().count("| 1 (d/16) |") == 4


def _fake_job(key: tuple) -> dict:
    """A sub-run whose validation score peaks at lr 0.01 for method "a" and 0.1 for "b"."""
    method, lr, seed = key
    best = 0.01 if method == "a" else 0.1
    return {"key": list(key), "val": -abs(lr - best) - 1e-3 * seed}


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_then_seeds_picks_each_keys_lr_on_the_first_seed(workers: int) -> None:
    from sparsenets.experiments.sst.common import sweep_then_seeds

    chosen, every = sweep_then_seeds(
        _fake_job, [("a",), ("b",)], [0.001, 0.01, 0.1], [5, 6, 7], lambda r: r["val"], workers
    )
    assert chosen[("a",)][0] == 0.01 and chosen[("b",)][0] == 0.1
    assert [r["key"] for r in chosen[("b",)][1]] == [["b", 0.1, 5], ["b", 0.1, 6], ["b", 0.1, 7]]
    assert len(every) == 2 * 3 + 2 * 2  # the sweep on seed 5, then the two other seeds at the chosen LR


def test_graph_study_runs_one_task_and_rejects_unknown_tasks(tmp_path: Path) -> None:
    """Node classification with SST on Drosophila, through the registry as `sparsenets run` does it."""
    from sparsenets.errors import ConfigError

    run_dir, result = execute(
        "sst-hyperbolic-graph",
        quick=True,
        root=tmp_path,
        sets=['tasks=["node-drosophila"]', 'methods=["lora","sst"]'],
    )
    m = result["metrics"]
    assert set(m) == {"node-drosophila_lora", "node-drosophila_sst", "node-drosophila_sst_beats_low_rank"}
    # the verdict is taken against the one low-rank baseline that ran
    assert m["node-drosophila_sst_beats_low_rank"] == (m["node-drosophila_sst"] > m["node-drosophila_lora"])
    assert {p.name for p in run_dir.iterdir() if p.is_dir()} >= {"node-drosophila-sst-lr0.01-s0"}
    # each sub-run keeps its result, which the study's seed mean is made of
    sub = json.loads((run_dir / "node-drosophila-sst-lr0.01-s0" / "summary.json").read_text())
    assert 0.25 < sub["test"] <= 1.0 and sub["optimizer_state"] > 0
    assert sub["test"] == m["node-drosophila_sst"]
    with pytest.raises(ConfigError, match="tasks must be"):
        execute("sst-hyperbolic-graph", quick=True, root=tmp_path, sets=['tasks=["cora"]'])


def test_versus_low_rank_compares_with_the_best_baseline_in_either_direction() -> None:
    from sparsenets.experiments.sst.common import versus_low_rank

    # accuracy-like: best baseline 0.80, full 0.90, SST 0.85 closes half the gap
    beats, closed = versus_low_rank({"full": 0.9, "sst": 0.85, "lora": 0.8, "relora": 0.7}, True)
    assert beats is True and closed == pytest.approx(0.5)
    # bpc-like (lower is better): best baseline 2.0, full 1.6, SST 2.1 is behind: negative share
    beats, closed = versus_low_rank({"full": 1.6, "sst": 2.1, "lora": 2.0}, False)
    assert beats is False and closed == pytest.approx(-0.25)
    # full rank no better than the baseline, or missing: no gap to close; no baseline: no verdict
    assert math.isnan(versus_low_rank({"full": 0.7, "sst": 0.9, "lora": 0.8}, True)[1])
    assert versus_low_rank({"sst": 0.9, "relora": 0.8}, True)[0] is True
    assert versus_low_rank({"full": 0.9, "sst": 0.85}, True) == (None, pytest.approx(math.nan, nan_ok=True))
