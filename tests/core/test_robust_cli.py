"""The CLI's error contract under malformed input: one line on stderr, exit 2, no traceback and no debris.

Configs are rejected on one path (`runs.configs.make_config` → `validate_config`) before any folder exists, so
almost every case here costs no training; a property-based fuzz of `--set` values and paths on the toy
experiment (tests/conftest.py) checks the same contract on inputs nobody listed.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparsenets import cli, runs
from sparsenets.errors import ConfigError
from sparsenets.runs.configs import RULES, rule_for, validate_config

BAD = [
    "run toy --set lr=nan",
    "run toy --set lr=inf",
    "run toy --set lr=-inf",
    "run toy --set lr=-0.1",
    "run toy --set lr=0",
    "run toy --set lr=1e400",
    "run toy --set lr=",
    "run toy --set steps=0",
    "run toy --set steps=-5",
    "run toy --set steps=1.5",
    "run toy --set steps=ten",
    "run toy --set steps=[10]",
    "run toy --set steps=99999999999999999999",
    "run toy --set width=[8]",
    "run toy --set width=0",
    "run toy --set checkpoint_every=-1",
    "run toy --set =3",
    "run toy --set lr",
    "run toy --set nosuch=1",
    "run mlp-mnist --set dropout=nan",
    "run mlp-mnist --set dropout=-0.1",
    "run mlp-mnist --set dropout=1.0",
    "run mlp-mnist --set epochs=0",
    "run mlp-mnist --set epochs=-1",
    "run mlp-mnist --set hidden=5",
    'run mlp-mnist --set hidden=[512,"a"]',
    "run mlp-mnist --set hidden=[0]",
    "run mlp-mnist --set hidden=[-3,4]",
    'run mlp-mnist --set hidden={"a":1}',
    "run mlp-mnist --set hidden=[1.5]",
    "run mlp-mnist --set hidden=[[512]]",
    "run mlp-mnist --set hidden=[",
    "run mlp-mnist --set batch_size=0",
    "run mlp-mnist --set batch_size=-128",
    "run mlp-mnist --set train_limit=-1",
    "run mlp-mnist --set train_limit=10",
    "run mlp-mnist --set eval_every=-469",
    "run mlp-mnist --set checkpoint_every=-200",
    "run mlp-mnist --set weight_decay=-1e-4",
    "run mlp-mnist --set threads=0",
    "run compare --set seeds=0",
    "run compare --set reductions=[1.0]",
    "run sst-charlm --set lrs=[0.003,-1]",
    "run grokking-tickets --set rate=1.5",
    "run wgsef-lenet5-mnist --set keep=0",
    "run wgsef-lenet5-mnist --set lam=-0.1",
    "run toy --out {empty}",
    "run toy --out {file}",
    "run toy --out {file}/sub",
    "run toy --out /proc/sparsenets-robust",
    "run toy --root {file}",
    "run toy --seed -1",
    "run toy --seed abc",
    "run toy --preset narrow",
    "run no-such-experiment",
    "run",
    "run toy --bogus-flag",
    "report {dir} --out {file}",
    "report {dir} --out {empty}",
    "data install no-such-dataset",
]


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`sparsenets ARGV` in this process: (exit code, stderr); argparse's SystemExit counts as its code."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
    return code, capsys.readouterr().err


def expand(line: str, tmp: Path) -> list[str]:
    """The argv of one BAD line, with {file}, {dir} and {empty} filled in under `tmp`."""
    (tmp / "a-file").write_text("not a folder")
    (tmp / "a-dir").mkdir(exist_ok=True)
    subs = {"{file}": str(tmp / "a-file"), "{dir}": str(tmp / "a-dir")}
    out = []
    for word in line.split(" "):
        for k, v in subs.items():
            word = word.replace(k, v)
        out.append("" if word == "{empty}" else word)
    return out


@pytest.mark.parametrize("line", BAD)
def test_malformed_invocation_is_one_line_exit_2_and_leaves_nothing(
    line, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # default run folders (runs/...) and relative paths land here
    argv = expand(line, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, err = invoke(argv, capsys)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, (line, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, (
        "a rejected run left debris"
    )


def test_there_are_at_least_40_malformed_cases() -> None:
    assert len(BAD) >= 40 and len(set(BAD)) == len(BAD)


def test_a_batch_larger_than_the_data_fails_inside_the_run_and_leaves_no_folder(tmp_path, capsys) -> None:
    # refused by the experiment's own check (or, for experiments without one, inside the run: the CLI then
    # removes the folder it created)
    code, err = invoke(
        ["run", "mlp-mnist", "--set", "batch_size=100000", "--out", str(tmp_path / "r" / "s")], capsys
    )
    assert code == 2 and "batch_size" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_existing_run_folder_is_never_removed_by_a_rejection(tmp_path, capsys) -> None:
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "run.json").write_text("{}")
    code, _ = invoke(["run", "toy", "--set", "steps=0", "--out", str(keep)], capsys)
    assert code == 2 and (keep / "run.json").read_text() == "{}"


def test_a_run_too_short_for_its_lr_schedule_is_one_line(tmp_path, capsys) -> None:
    argv = [
        "run",
        "mlp-mnist",
        "--set",
        "train_limit=1280",
        "--set",
        "hidden=[8]",
        "--out",
        str(tmp_path / "r"),
    ]
    code, err = invoke([*argv, "--set", "epochs=1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_every_registered_config_passes_its_own_validation() -> None:
    for exp in runs.discover().values():
        for quick in (False, True):
            runs.make_config(exp, quick)
            for preset in exp.presets:
                runs.make_config(exp, quick, preset=preset)


@dataclass
class Shapes:
    """Every annotation kind the experiments use."""

    pair: tuple[int, int] = (4, 4)
    cut: float | None = None
    deskew: bool = True
    name: str = "x"
    lrs: tuple[float, ...] = (0.1,)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("pair", (4, 4, 4), "exactly 2"),
        ("pair", (4, "4"), "integer"),
        ("cut", math.nan, "finite"),
        ("cut", "0.3", "number"),
        ("deskew", 1, "true or false"),
        ("name", 3, "string"),
        ("lrs", (0.1, -0.1), r"outside \(0, inf\)"),
        ("lrs", 0.1, "list"),
    ],
)
def test_validate_config_checks_types_from_annotations(field, value, match) -> None:
    validate_config(Shapes())
    validate_config(Shapes(cut=0.3))
    with pytest.raises(ConfigError, match=match):
        validate_config(Shapes(**{field: value}))


def test_rules_table_matches_names_and_the_docs() -> None:
    assert rule_for("finetune_lr") is rule_for("lrs") is rule_for("lr")
    assert rule_for("epochs").lo == 1 and rule_for("finetune_epochs").lo == 0
    assert rule_for("eval_every").lo == 0 and rule_for("timing_every").lo == 1
    assert rule_for("dropout").allows(0.0) and not rule_for("dropout").allows(1.0)
    assert rule_for("keep").allows(1.0) and not rule_for("keep").allows(0.0)
    assert rule_for("width_of_nothing") is None
    doc = (Path(__file__).parents[2] / "docs" / "robustness.md").read_text()
    for rule in RULES:
        cell = rule.pattern.replace("|", "\\|")  # a Markdown table cell escapes its pipes
        assert f"| `{cell}` | {rule.range_text()} |" in doc, rule.pattern


# --- property-based fuzz of --set values and paths on the toy experiment (quick: 20 steps when accepted) ---
KEYS = st.sampled_from(["steps", "lr", "width", "checkpoint_every", "stepz", ""])
TEXT = st.one_of(
    st.integers(-3, 30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "", "[]", "[1]", "null", "true", "1e400", "0x10", "1_0"]),
    st.text(max_size=6),
    st.lists(st.integers(-2, 9), max_size=3).map(json.dumps),
)
PATHS = st.sampled_from(["fresh", "nested/fresh", "", "file", "file/below", "/proc/sparsenets-fuzz"])


def _nonsense(key: str, text: str) -> bool:
    """True for a value no toy run may accept (an oracle independent of the validation code)."""
    if key == "lr":
        try:
            return not (math.isfinite(float(text)) and float(text) > 0)
        except ValueError:
            return True
    if key in ("steps", "width", "checkpoint_every"):
        try:
            return int(text) < (0 if key == "checkpoint_every" else 1)
        except ValueError:
            return True
    return True  # unknown keys


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sets=st.lists(st.tuples(KEYS, TEXT), min_size=1, max_size=3), where=PATHS)
def test_fuzz_set_values_and_paths(sets, where, capsys) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sparsenets-fuzz-"))
    try:
        (tmp / "file").write_text("x")
        out = where if where in ("", "/proc/sparsenets-fuzz") else str(tmp / where)
        argv = ["run", "toy", "--quick", "--out", out, "--set", "steps=5"]
        for key, text in sets:
            argv += ["--set", f"{key}={text}"]
        before = sorted(tmp.rglob("*"))
        code, err = invoke(argv, capsys)
        event(f"exit {code}")  # --hypothesis-show-statistics: how many examples ran vs were rejected
        assert code in (0, 2) and "Traceback" not in err, err
        assert code == 0 or len(err.strip().splitlines()) == 1, err
        last = {k: t for k, t in sets}  # the last --set of a key wins
        if any(_nonsense(k, t) for k, t in last.items()) or where not in ("fresh", "nested/fresh"):
            assert code == 2, f"nonsense accepted: {argv}"
        try:
            runs.make_config(runs.get("toy"), True, [f"{k}={t}" for k, t in sets])
            rejected = where not in ("fresh", "nested/fresh")
        except ConfigError:
            rejected = True
        if rejected:
            assert sorted(tmp.rglob("*")) == before, "a rejected config left a folder"
    finally:
        shutil.rmtree(tmp)


def test_a_full_disk_is_one_line_and_other_os_errors_are_not_hidden(tmp_path, monkeypatch, capsys) -> None:
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "run.json"))

    monkeypatch.setattr(runs, "execute", full)
    code, err = invoke(["run", "toy", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1

    def bug(*args, **kwargs):
        raise OSError(errno.ENOENT, "No such file or directory", "x")

    monkeypatch.setattr(runs, "execute", bug)
    with pytest.raises(FileNotFoundError):
        cli.main(["run", "toy", "--out", str(tmp_path / "r")])
