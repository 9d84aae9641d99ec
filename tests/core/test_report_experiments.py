"""What an experiment writes for the report: no verdict from a smoke run, the same metrics either way, and a
kept-per-layer figure labelled with layer names (fake study results; no training)."""

from __future__ import annotations

import copy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch

from sparsenets.experiments.wgsef.report import SMOKE_VERDICT, layer_labels, plot_and_report, summarize
from sparsenets.experiments.wgsef.study import StudyConfig
from sparsenets.models.cnn import LeNet5
from sparsenets.runs import RunContext

SIZES = [6, 16, 120]


def _seed(seed: int) -> dict:
    """One seed's record as `run_seed` + `measure_saved` leave it, for every method."""
    sparse = {
        "kept": [3, 8, 60],
        "kept_before_select": [6, 14, 100],
        "accuracy_before_select": 90.0,
        "accuracy_after_select": 88.0,
        "max_abs_diff": 1e-6,
        "flops": 1e5,
        "params": 1e4,
    }
    rec = {"seed": seed, "dense": {"accuracy": 98.0 + seed, "flops": 4e5, "params": 6e4}}
    for i, name in enumerate(("wgsef", "group_lasso", "magnitude", "tp_groupnorm")):
        rec[name] = {**sparse, "accuracy": 97.5 + seed - 0.1 * i}
    rec["measure"] = {
        "params_dense": 6e4,
        "params_compact": 1e4,
        "params_reduction": 6.0,
        "flops_dense": 4e5,
        "flops_compact": 1e5,
        "flops_reduction": 4.0,
        "latency_b1_dense": 1e-3,
        "latency_b1_compact": 5e-4,
        "speedup_b1": 2.0,
        "latency_b64_dense": 1e-2,
        "latency_b64_compact": 3e-3,
        "speedup_b64": 3.3,
    }
    return rec


def _write(tmp_path: Path, quick: bool, names: list[str] | None = None) -> tuple[str, dict, RunContext]:
    per_seed = [_seed(0), _seed(1)]
    summary = summarize(per_seed)
    before = copy.deepcopy(summary)
    ctx = RunContext(dir=tmp_path / ("q" if quick else "f"), seed=0, quick=quick, device=torch.device("cpu"))
    ctx.dir.mkdir()
    text = plot_and_report(ctx, StudyConfig(), summary, per_seed, SIZES, "Toy", "a claim", 3.0, 1.0, names)
    assert summary == before  # the fragment and figures never touch the results
    return text, summary, ctx


def _verdicts(text: str) -> list[str]:
    table = text.split("| claim | target | measured | verdict |")[1].strip().splitlines()[1:]
    return [row.rstrip(" |").rsplit("|", 1)[1].strip() for row in table]


def test_wgsef_smoke_run_writes_no_verdict_and_the_same_numbers(tmp_path: Path) -> None:
    smoke, s_summary, _ = _write(tmp_path, quick=True)
    full, f_summary, _ = _write(tmp_path, quick=False)
    assert set(_verdicts(smoke)) == {SMOKE_VERDICT} and len(_verdicts(smoke)) == 5
    assert set(_verdicts(full)) <= {"met", "not met", "no baseline run"} | {_verdicts(full)[0]}
    assert "met" in _verdicts(full) and SMOKE_VERDICT not in full
    assert s_summary == f_summary
    # everything but the verdict column reads the same
    strip = [ln.rsplit("|", 2)[0] if ln.startswith("| ") and "|" in ln else ln for ln in smoke.splitlines()]
    assert strip == [
        ln.rsplit("|", 2)[0] if ln.startswith("| ") and "|" in ln else ln for ln in full.splitlines()
    ]


def test_wgsef_kept_figure_is_written_once_per_study_and_skipped_without_layers(tmp_path: Path) -> None:
    _, _, ctx = _write(tmp_path, quick=True, names=["conv1", "conv2", "fc1"])
    assert (ctx.dir / "figures" / "kept_per_layer.png").stat().st_size > 1000
    per_seed = [_seed(0)]
    empty = RunContext(dir=tmp_path / "e", seed=0, quick=True, device=torch.device("cpu"))
    empty.dir.mkdir()
    plot_and_report(empty, StudyConfig(), summarize(per_seed), per_seed, [], "Toy", "c", 3.0, 1.0)
    assert not (empty.dir / "figures" / "kept_per_layer.png").exists()


def test_layer_labels_name_the_regularized_layers() -> None:
    model = LeNet5(width=0.5)
    sizes = [model[0].out_channels, model[3].out_channels, model[7].out_features]
    assert layer_labels(model, sizes, torch.zeros(1, 1, 28, 28)) == ["conv1", "conv2", "fc1"]
    assert layer_labels(model, [1, 2], torch.zeros(1, 1, 28, 28)) == ["layer 1", "layer 2"]
