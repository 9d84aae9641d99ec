"""Real-data checks for sparsenets.data; run `sparsenets data install all` first (missing data fails, never skips)."""

from __future__ import annotations

import collections

import pytest
import torch

from sparsenets.data import REGISTRY, available, cache_dir, check, load, verify
from sparsenets.data.cli import main as data_cli
from sparsenets.data.modular import OPS
from sparsenets.errors import DataNotFoundError, SparsenetsError


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_28x28_image_sets(name: str) -> None:
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = load(name, split)
        assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
        assert y.shape == (n,) and y.dtype == torch.int64
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        counts = torch.bincount(y, minlength=10)
        assert len(counts) == 10
        if split == "train":
            assert bool(((counts >= 5000) & (counts <= 7000)).all()), counts
    # Pixels are exact multiples of 1/255 (bytes restored from the mnist pickle's /256 encoding).
    assert torch.allclose(x * 255, (x * 255).round(), atol=1e-4)


def test_mnist_first_labels_are_the_classic_order() -> None:
    _, y = load("mnist", "train")
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]


def test_digits_split_is_fixed() -> None:
    xtr, ytr = load("digits", "train")
    xte, yte = load("digits", "test")
    assert xtr.shape == (1437, 1, 8, 8) and xte.shape == (360, 1, 8, 8)
    assert float(xtr.min()) >= 0.0 and float(xtr.max()) == 1.0
    assert len(torch.unique(torch.cat([ytr, yte]))) == 10
    assert torch.equal(load("digits", "train").x, xtr)


def test_kjv_text_and_splits() -> None:
    text = load("kjv")
    assert isinstance(text, str) and len(text) >= 4_000_000
    assert text.startswith("In the beginning God created the heaven and the earth.")
    assert "<" not in text  # no OSIS markup left
    parts = [load("kjv", s) for s in ("train", "val", "test")]
    assert "".join(parts) == text
    assert abs(len(parts[0]) / len(text) - 0.9) < 1e-3


def test_parallel_corpus_holds_out_john() -> None:
    pairs = load("kjv-rv1909", "all")
    assert len(pairs) == 31084
    books = collections.Counter(p.book for p in pairs)
    assert len(books) == 66
    # Standard KJV verse counts per book.
    assert (books["Gen"], books["Ps"], books["Matt"], books["John"], books["Rev"]) == (
        1533,
        2461,
        1071,
        879,
        404,
    )
    test = load("kjv-rv1909", "test")
    assert {p.book for p in test} == {"John"} and len(test) == 879
    assert test[0].en.startswith("In the beginning was the Word")
    assert test[0].es.startswith("EN el principio era el Verbo")
    train = load("kjv-rv1909")
    assert len(train) + len(test) == len(pairs) and "John" not in {p.book for p in train}
    assert len(load("kjv-rv1909", "test", holdout="Mark")) == 678


def test_wormnet_graph() -> None:
    g = load("wormnet")
    assert g.num_nodes == 2445 == len(g.node_names)
    assert g.edges.shape == (78736, 2) and g.edges.dtype == torch.int64
    assert bool((g.edges[:, 0] < g.edges[:, 1]).all())
    assert len({tuple(e) for e in g.edges.tolist()}) == 78736
    assert int(g.edges.max()) == 2444 and g.weights is None


@pytest.mark.parametrize(("side", "n"), [("right", 213), ("left", 209)])
def test_drosophila(side: str, n: int) -> None:
    d = load("drosophila", side=side)
    assert d.adjacency.shape == (n, n) and d.adjacency.dtype == torch.float32
    assert d.labels.shape == (n,) and d.labels.dtype == torch.int64
    assert d.classes == ["I", "K", "O", "P"]
    if side == "right":
        assert torch.bincount(d.labels).tolist() == [21, 100, 29, 63]


@pytest.mark.parametrize(
    ("name", "sizes", "n_ent", "n_rel"),
    [
        ("umls", (5216, 652, 661), 135, 46),
        ("nations", (1592, 199, 201), 14, 55),
        ("kinships", (8544, 1068, 1074), 104, 25),
    ],
)
def test_knowledge_graphs(name: str, sizes: tuple[int, int, int], n_ent: int, n_rel: int) -> None:
    splits = [load(name, s) for s in ("train", "valid", "test")]
    assert tuple(len(t.triples) for t in splits) == sizes
    assert all(t.entities == splits[0].entities and t.relations == splits[0].relations for t in splits)
    assert len(splits[0].entities) == n_ent and len(splits[0].relations) == n_rel
    t = splits[0].triples
    assert t.dtype == torch.int64 and t.shape[1] == 3
    assert int(t[:, [0, 2]].max()) < n_ent and int(t[:, 1].max()) < n_rel


_PY = {
    "add": lambda a, b, p: (a + b) % p,
    "subtract": lambda a, b, p: (a - b) % p,
    "multiply": lambda a, b, p: a * b % p,
    "x2xyy2": lambda a, b, p: (a * a + a * b + b * b) % p,
}


@pytest.mark.parametrize("op", OPS)
def test_modular_labels(op: str) -> None:
    p, frac = 23, 0.3
    train = load("modular", "train", p=p, op=op, train_frac=frac, seed=1)
    test = load("modular", "test", p=p, op=op, train_frac=frac, seed=1)
    total = p * (p - 1) if op == "divide" else p * p
    assert len(train.y) == int(frac * total) and len(train.y) + len(test.y) == total
    x = torch.cat([train.x, test.x])
    y = torch.cat([train.y, test.y])
    assert x.dtype == y.dtype == torch.int64 and x.shape == (total, 2)
    assert len({tuple(r) for r in x.tolist()}) == total  # every pair exactly once
    for (a, b), c in zip(x.tolist(), y.tolist()):
        if op == "divide":
            assert b != 0 and c * b % p == a
        else:
            assert c == _PY[op](a, b, p)


def test_modular_default_size_and_seed() -> None:
    a = load("modular", "train")
    assert a.x.shape == (int(0.4 * 67 * 67), 2)
    assert torch.equal(a.x, load("modular", "train").x)
    assert not torch.equal(a.x, load("modular", "train", seed=1).x)


@pytest.mark.parametrize(("pairs", "total"), [("le", 67 * 68 // 2), ("lt", 67 * 66 // 2)])
def test_modular_unordered_pairs_split_after_filtering(pairs: str, total: int) -> None:
    train = load("modular", "train", pairs=pairs, seed=2)
    test = load("modular", "test", pairs=pairs, seed=2)
    assert len(train.y) == int(0.4 * total) and len(train.y) + len(test.y) == total  # 911/1367 for "le"
    x = torch.cat([train.x, test.x])
    assert (x[:, 0] <= x[:, 1]).all() if pairs == "le" else (x[:, 0] < x[:, 1]).all()
    assert len({tuple(r) for r in x.tolist()}) == total
    with pytest.raises(SparsenetsError, match="unknown pairs"):
        load("modular", pairs="ge")


def test_missing_dataset_names_the_install_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DEB_ROOT", str(tmp_path / "root"))
    assert cache_dir() == tmp_path / "cache"
    for name in ("fashion-mnist", "kjv", "kjv-rv1909", "wormnet"):
        with pytest.raises(DataNotFoundError) as err:
            load(name)
        msg = str(err.value)
        assert f"sparsenets data install {name}" in msg and "\n" not in msg
        assert not verify(name)
    installed = {i.name: i.installed for i in available()}
    assert set(installed) == set(REGISTRY)
    assert not installed["kjv"] and installed["modular"]


def test_verify_detects_a_corrupted_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DEB_ROOT", str(tmp_path / "root"))
    f = tmp_path / "root/usr/share/doc/python3-networkx/examples/algorithms/WormNet.v3.benchmark.txt"
    f.parent.mkdir(parents=True)
    f.write_text("a\tb\n")
    with pytest.raises(SparsenetsError, match=r"fails its pinned sha256.*sparsenets data install wormnet"):
        load("wormnet")  # a load checks the pinned hash too, before parsing
    assert not verify("wormnet") and "expected" in check("wormnet")[0]


def test_installed_sources_verify() -> None:
    for name, spec in REGISTRY.items():
        assert verify(name), (name, check(name))
        assert spec.splits


def test_bad_names_splits_and_params() -> None:
    with pytest.raises(SparsenetsError, match="known: mnist"):
        load("cifar10")
    with pytest.raises(SparsenetsError, match="splits"):
        load("mnist", "valid")
    with pytest.raises(SparsenetsError, match="params"):
        load("mnist", "train", p=3)
    with pytest.raises(SparsenetsError, match="op"):
        load("modular", op="power")


def test_cli(capsys) -> None:
    assert data_cli(["list"]) == 0
    assert "mnist" in capsys.readouterr().out
    assert data_cli(["verify", "umls"]) == 0
    assert data_cli(["install", "nope"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_apt_fallback_updates_private_lists_when_not_root(tmp_path, monkeypatch) -> None:
    import subprocess

    from sparsenets.data import sources

    calls: list[list[str]] = []

    def fake_run(cmd: list[str], cwd) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        ok = len(calls) > 1  # the first `apt-get download` fails as if apt had no lists
        if ok and "download" in cmd:
            (cwd / "x.deb").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0 if ok else 100, "", "E: no lists")

    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path))
    monkeypatch.setattr(sources, "_run", fake_run)
    monkeypatch.setattr(sources.os, "geteuid", lambda: 1000)
    deb = sources._apt_download(sources.SOURCES["python3-networkx"], tmp_path)
    assert deb.name == "x.deb"
    assert calls[0] == ["apt-get", "download", "python3-networkx=2.8.8-1"]
    assert calls[1][-1] == "update" and calls[2][-2:] == ["download", "python3-networkx=2.8.8-1"]
    assert f"Dir::State::Lists={tmp_path / 'apt' / 'lists'}" in calls[1] and "Debug::NoLocking=1" in calls[2]


def test_add_parser_registers_data_subcommand() -> None:
    import argparse

    from sparsenets.data.cli import add_parser, run

    parser = argparse.ArgumentParser(prog="sparsenets")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "verify", "nations"])
    assert args.func is run and args.names == ["nations"] and run(args) == 0
