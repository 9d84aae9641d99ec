"""The GIOROM studies end to end in their `--quick` form on a tiny generated set: every arm trained, evaluated and
timed, report and figures written, no verdict; a finished run is reused and a run missing its last phases
redoes only those; bad configs are one line, exit 2, no folder; the claim table judges the issue's thresholds."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest

from sparsenets import cli
from sparsenets.experiments.giorom import arms as A
from sparsenets.experiments.giorom.report import SMOKE_VERDICT, claims

FAST = ["timing_threads=1"]  # CI cores may be shared: no oversubscribed timing in a smoke test


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """One data cache for the module: each tiny set is generated once."""
    return tmp_path_factory.mktemp("mpm-cache")


def _run(name: str, out, sets: list[str]) -> int:
    return cli.main(["run", name, "--quick", "--out", str(out), *[a for s in sets for a in ("--set", s)]])


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}  # fmt: skip


def test_water_quick_runs_every_arm_writes_report_and_resumes(tmp_path, monkeypatch, data_root) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(data_root))
    out = tmp_path / "water"
    assert _run("giorom-water2d", out, FAST) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["arms"]) == {"A", "A'", "B32", "B16"}
    for name, arm in res["arms"].items():
        assert all(math.isfinite(v) for v in arm["dense_mse"].values()), name
        assert arm["timing"]["total_ms"] > 0 and arm["mean_degree"] >= 1
        assert (arm["dense_mse_shepard"] is None) == (arm["kind"] != "giorom")
    assert res["arms"]["B16"]["timing"]["decoder_ms"] > 0 and res["arms"]["A"]["timing"]["decoder_ms"] == 0
    assert res["arms"]["A"]["dense_mse"] == res["arms"]["A"]["sparse_mse"]  # A steps every particle
    assert res["arms"]["B16"]["radius"] == pytest.approx(res["arms"]["A"]["radius"] * math.sqrt(512 / 16))
    assert res["target"] == "clean" and res["noise_std"] == 3e-4  # the defaults, recorded with the results
    assert len(res["query_timing"]["decoder_ms"]) == 3 and set(res["timing_16k"]) == set(res["arms"])
    metrics = json.loads((out / "result.json").read_text())["metrics"]  # the overview's headline figures
    a_ms = res["arms"]["A"]["timing"]["total_ms"]
    assert metrics["speedup_nm32"] == pytest.approx(a_ms / res["arms"]["B16"]["timing"]["total_ms"])
    b_mse, a_mse = (res["arms"][k]["dense_mse"][str(res["claim_horizon"])] for k in ("B16", "A"))
    assert metrics["mse_vs_gns_nm32"] == pytest.approx(b_mse / a_mse)
    longest = str(max(res["horizons"]))
    static = res["no_model"]["static"][longest]
    assert metrics["mse_vs_static_A"] == pytest.approx(res["arms"]["A"]["dense_mse"][longest] / static)
    report = (out / "report.md").read_text()
    assert report.startswith("**GIOROM on MPM water 2-D, N = 512 (smoke run")
    assert SMOKE_VERDICT in report and "| holds |" not in report and "| fails |" not in report
    for fig in ("main-error-time-vs-ratio", "decoder-time-vs-queries", "rollout-side-by-side"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    assert (out / "figures" / "rollout.gif").read_bytes()[:6] == b"GIF89a"
    before = _digest(out)
    assert _run("giorom-water2d", out, FAST) == 0  # finished: reused, nothing rewritten
    assert _digest(out) == before
    trained = (out / "arm-A" / "model.safetensors").stat().st_mtime_ns
    for path in (out / "result.json", out / "timing.json", out / "arm-B16" / "eval.json"):
        path.unlink()  # as if killed after training, during evaluation
    assert _run("giorom-water2d", out, FAST) == 0
    assert (out / "arm-A" / "model.safetensors").stat().st_mtime_ns == trained  # no arm retrained
    assert json.loads((out / "arm-B16" / "eval.json").read_text())["M"] == 16


def test_whole_study_runs_both_materials_in_one_command(tmp_path, monkeypatch, data_root) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(data_root))
    out = tmp_path / "both"
    assert _run("giorom-2d", out, [*FAST, "big_n=0", "sample_sizes=[32]"]) == 0
    for material in ("water", "jelly"):
        res = json.loads((out / material / "results.json").read_text())
        assert (
            res["material"] == material and set(res["arms"]) == {"A", "A'", "B32"} and "timing_16k" not in res
        )
        assert (out / "figures" / f"main-{material}-error-time-vs-ratio.png").stat().st_size > 5000
        assert (out / "figures" / f"{material}-rollout-side-by-side.png").stat().st_size > 5000
    report = (out / "report.md").read_text()
    assert report.startswith("**GIOROM on water and jelly, N = 512: the issue's claims (smoke run")
    assert "| claim | needed | water | jelly |" in report  # one row per claim, one column per material
    claim_rows = [line for line in report.split("### water")[0].splitlines() if line.startswith("| (")]
    assert len(claim_rows) >= 6 and all(SMOKE_VERDICT in row for row in claim_rows)
    assert (
        sum(row.count(SMOKE_VERDICT) == 2 for row in claim_rows) >= 5
    )  # speed and decoder rows: both materials
    assert "### water" in report and "MPM jelly" in report and "`jelly/figures/rollout.gif`" in report
    metrics = json.loads((out / "result.json").read_text())["metrics"]
    assert {"water_speedup_nm16", "jelly_speedup_nm16", "jelly_mse_vs_static_A"} <= set(metrics)
    before = _digest(out)
    assert _run("giorom-2d", out, [*FAST, "big_n=0", "sample_sizes=[32]"]) == 0  # finished: reused
    assert _digest(out) == before


def test_whole_study_rejects_unknown_materials_before_a_folder(tmp_path, capsys) -> None:
    out = tmp_path / "bad"
    assert _run("giorom-2d", out, ['materials=["water","lava"]']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown: ['lava']" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "bad, message",
    [
        ("sample_sizes=[600]", "too small for [600]"),
        ("horizons=[5,30]", "need frames >= 6 + the longest horizon"),
        ("claim_horizon=7", "must be one of horizons"),
        ('sampling="grid"', "sampling must be 'fps' or 'random'"),
        ('target="noisy"', "target must be one of ['clean', 'gns']"),
        ("noise_std=-0.1", "noise_std must be >= 0"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_no_folder(tmp_path, capsys, bad: str, message: str) -> None:
    out = tmp_path / "bad"
    assert _run("giorom-water2d", out, [bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def _arm(kind: str, m: int, stepper: float, decoder: float, mse: float) -> dict:
    timing = {"stepper_ms": stepper, "decoder_ms": decoder, "total_ms": stepper + decoder}
    return {"kind": kind, "M": m, "timing": timing, "dense_mse": {"50": mse}}


def _result(quick: bool, b_stepper: float, b_mse: float, decoder_ms: list[float]) -> dict:
    arms = {
        "A": _arm("gns", 4096, 1000.0, 0.0, 1.0),
        "A'": _arm("stepper-full", 4096, 400.0, 0.0, 1.0),
        "B256": _arm("giorom", 256, b_stepper, 5.0, b_mse),
    }
    return {"arms": arms, "N": 4096, "quick": quick, "claim_horizon": 50,
            "query_timing": {"n_query": [1000, 2000, 4000], "decoder_ms": decoder_ms}}  # fmt: skip


def test_noise_sigma_is_absolute_or_a_fraction_of_the_mean_acceleration_std() -> None:
    meta = {"acc_std": [2e-4, 4e-4]}
    assert A.noise_sigma({"noise_std": 3e-4, "noise_relative": False}, meta) == 3e-4
    assert A.noise_sigma({"noise_std": 0.5, "noise_relative": True}, meta) == pytest.approx(1.5e-4)
    assert A.noise_sigma({"noise_std": 0.0, "noise_relative": True}, meta) == 0.0


def test_claim_table_applies_the_thresholds() -> None:
    rows = {r[0]: r for r in claims(_result(False, 40.0, 1.5, [1.0, 2.0, 4.0]))}
    # A′/B = 400/40 = 10 ≥ 8; A/B = 1000/45 ≈ 22 ≥ 10; MSE 1.5 ≤ 2; decoder 5/45 = 11 % ≤ 20 %; exactly linear
    assert [r[3] for r in rows.values()] == ["holds"] * 5
    rows = {r[0]: r for r in claims(_result(False, 60.0, 2.5, [1.0, 8.0, 2.0]))}
    assert rows["(1) A′/B step time, N/M = 16"][3] == "fails"  # 400/60 < 8
    assert rows["(2) A/B end-to-end step time, N/M = 16"][3] == "holds"  # 1000/65 ≥ 10
    assert rows["(2) dense 50-step MSE, B (B256) / A"][3] == "fails"
    assert rows["(3) decoder time linear in N_query"][3] == "fails"
    assert {r[3] for r in claims(_result(True, 40.0, 1.5, [1.0, 2.0, 4.0]))} == {SMOKE_VERDICT}


def test_claim_table_asks_whether_the_models_beat_particles_that_stay_put() -> None:
    res = {**_result(False, 40.0, 1.5, [1.0, 2.0, 4.0]), "horizons": [50, 150]}
    for arm, long in (("A", 4.0), ("B256", 2.0)):
        res["arms"][arm]["dense_mse"]["150"] = long
    res["no_model"] = {"static": {"50": 1.2, "150": 3.0}, "constant velocity": {"50": 9.0, "150": 1.0}}
    rows = {r[0]: r for r in claims(res)}
    # at 50 steps the better no-model predictor is "static" (1.2): A's 1.0 learned, B256's 1.5 did not
    assert rows["(2) A learned the dynamics: dense 50-step MSE below 'static'"][3] == "holds"
    assert rows["(2) B256 learned the dynamics: dense 50-step MSE below 'static'"][3] == "fails"
    # at 150 "constant velocity" is the better one (1.0): both models fail there
    assert rows["(2) A learned the dynamics: dense 150-step MSE below 'constant velocity'"][3] == "fails"
    assert rows["(2) B256 learned the dynamics: dense 150-step MSE below 'constant velocity'"][3] == "fails"
    assert {r[3] for r in claims({**res, "quick": True})} == {SMOKE_VERDICT}
    assert not [r for r in claims(_result(False, 40.0, 1.5, [1.0, 2.0, 4.0])) if "learned" in r[0]]


def _load_benchmark(name: str):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timing_passes_summary_reads_every_pass(tmp_path) -> None:
    passes = _load_benchmark("giorom_timing_passes")
    run = tmp_path / "run"
    (run / "water").mkdir(parents=True)
    (run / "result.json").write_text("{}")
    # A′/B at N/M = 16: 400/40 = 10× in the archived pass (holds), 400/60 = 6.7× in the current one (fails)
    for folder, b_stepper in ((run / "passes" / "pass-1" / "water", 40.0), (run / "water", 60.0)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(_result(False, b_stepper, 1.5, [1.0, 2.0, 4.0])))
    assert passes.materials(run) == ["water"]
    table = passes.summary(run)
    assert "### water: 2 timing passes" in table
    row = next(line for line in table.splitlines() if line.startswith("| (1) A′/B step time, N/M = 16 |"))
    assert row == "| (1) A′/B step time, N/M = 16 | ≥ 8× | 6.67 | 8.33 | 10 | 1 of 2 |"


def test_a_failed_timing_pass_puts_the_run_folder_back(tmp_path) -> None:
    passes = _load_benchmark("giorom_timing_passes")
    run = tmp_path / "run"
    (run / "water").mkdir(parents=True)
    files = {"result.json": "{}", "water/results.json": '{"a": 1}', "water/timing.json": '{"b": 2}'}
    for name, text in files.items():
        (run / name).write_text(text)
    with pytest.raises(SystemExit) as stop:
        passes.one_pass(run, 1, ["target=bogus"])  # the CLI refuses the config: the rerun fails at once
    assert stop.value.code == 2
    assert {name: (run / name).read_text() for name in files} == files
    assert not (run / "passes" / "pass-1").exists()
