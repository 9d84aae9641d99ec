"""Experiments as typed configs plus a run function; run folders named by a hash of the config; result.json.

An experiment module in `sparsenets/experiments/` registers itself:

    @dataclass
    class Config:
        steps: int = 1000
        lr: float = 1e-3

    @experiment("mlp-mnist", Config, quick={"steps": 50}, description="Dense MLP on MNIST")
    def run(cfg: Config, ctx: RunContext) -> dict: ...

`run` returns a JSON-serialisable dict of metrics; the runner writes result.json around it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
import multiprocessing
import pkgutil
import platform
import subprocess
import time
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sparsenets.errors import ConfigError
from sparsenets.files import atomic_write_bytes
from sparsenets.train import dist
from sparsenets.train.loop import seed_everything

RunFn = Callable[[Any, "RunContext"], dict[str, Any]]


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name, config type, quick overrides, named presets and run function.

    A preset is a named set of overrides for a documented study (`--preset NAME`), so that a recipe of a dozen
    `--set` flags is one word and cannot drift from the docs that report it."""

    name: str
    config_cls: type
    fn: RunFn
    quick: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)


REGISTRY: dict[str, Experiment] = {}


def experiment(
    name: str,
    config_cls: type,
    quick: dict[str, Any] | None = None,
    description: str = "",
    presets: dict[str, dict[str, Any]] | None = None,
) -> Callable[[RunFn], RunFn]:
    """Register `fn(config, ctx) -> metrics` under `name` (a decorator); `presets` maps a name to overrides."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config of experiment {name!r} must be a dataclass")

    def register(fn: RunFn) -> RunFn:
        fields = {f.name for f in dataclasses.fields(config_cls)}
        for label, overrides in [("quick overrides", quick or {})] + [
            (f"preset {p!r}", v) for p, v in (presets or {}).items()
        ]:
            unknown = set(overrides) - fields
            if unknown:
                raise TypeError(f"{label} of {name!r} name unknown fields {sorted(unknown)}")
        REGISTRY[name] = Experiment(
            name,
            config_cls,
            fn,
            dict(quick or {}),
            description or (fn.__doc__ or ""),
            {p: dict(v) for p, v in (presets or {}).items()},
        )
        return fn

    return register


def discover() -> dict[str, Experiment]:
    """Import every module under `sparsenets.experiments` (its per-method folders included) so each registers
    itself; return the registry."""
    import sparsenets.experiments as pkg

    for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
        importlib.import_module(mod.name)
    return REGISTRY


def get(name: str) -> Experiment:
    """The experiment called `name`; a ConfigError naming the closest matches otherwise."""
    reg = discover()
    if name not in reg:
        close = difflib.get_close_matches(name, reg, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown experiment {name!r}{hint} (see `sparsenets run --list`)")
    return reg[name]


def _parse_value(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        return _parse_value(text, args[0], key)
    try:
        if tp is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return low in ("true", "1", "yes")
        if tp in (int, float, str):
            return tp(text)
        value = json.loads(text)
        return tuple(value) if origin is tuple else value
    except ValueError as e:
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"--set {key}={text}: expected a value of type {name}") from e


def make_config(
    exp: Experiment, quick: bool = False, sets: list[str] | None = None, preset: str | None = None
) -> Any:
    """Build the config: defaults, then the quick overrides, then the named preset, then each `key=value` of
    `sets`."""
    hints = typing.get_type_hints(exp.config_cls)
    values: dict[str, Any] = dict(exp.quick) if quick else {}
    if preset is not None:
        if preset not in exp.presets:
            known = ", ".join(sorted(exp.presets)) or "none"
            raise ConfigError(f"experiment {exp.name!r} has no preset {preset!r} (its presets: {known})")
        values.update(exp.presets[preset])
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        if key not in hints:
            close = difflib.get_close_matches(key, hints, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(hints)}"
            raise ConfigError(f"experiment {exp.name!r} has no config key {key!r}{hint}")
        values[key] = _parse_value(text, hints[key], key)
    return exp.config_cls(**values)


def _with_new_defaults(stored: dict[str, Any], identity: dict[str, Any], exp: Experiment, quick: bool) -> Any:
    """`stored` with the config keys it lacks filled in, where this run leaves them at their defaults: a folder
    written before a config key existed still resumes, unless this run sets that key to something else."""
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        return stored
    defaults = json.loads(json.dumps(dataclasses.asdict(make_config(exp, quick))))
    now = identity["config"]
    added = {k: now[k] for k in now.keys() - stored["config"].keys() if now[k] == defaults.get(k, object())}
    return {**stored, "config": {**stored["config"], **added}}


def config_hash(name: str, config: Any, seed: int) -> str:
    """Eight hex digits that identify (experiment, config, seed)."""
    blob = json.dumps(
        {"experiment": name, "config": dataclasses.asdict(config), "seed": seed}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def versions() -> dict[str, str | None]:
    """Versions of python, torch, numpy, sparsenets and the git commit of the source tree (None outside git)."""
    import numpy

    import sparsenets

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sparsenets": sparsenets.__version__,
        "git_commit": commit,
    }


@dataclass
class RunContext:
    """What an experiment's run function gets besides its config.

    Attributes:
        dir: the run folder (exists); write artefacts here.
        seed: the base seed (experiments with several seeds use seed, seed+1, ...).
        quick: True for a reduced smoke-test size.
        device: CUDA when present, else CPU.
    """

    dir: Path
    seed: int
    quick: bool
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints (rank 0)."""
        return dist.current().is_main

    def subdir(self, name: str) -> Path:
        """A sub-folder of the run folder (for one seed or one method), created on rank 0."""
        path = self.dir / name
        if self.is_main:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, message: str) -> None:
        """Print one progress line (rank 0 only)."""
        if self.is_main:
            print(message, flush=True)

    def save_json(self, name: str, obj: Any) -> None:
        """Write `obj` as JSON into the run folder atomically (rank 0 only)."""
        if self.is_main:
            atomic_write_bytes(self.dir / name, json.dumps(obj, indent=2, default=str).encode())

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as figures/NAME.png (the report embeds every figure) and close it."""
        import matplotlib.pyplot as plt

        path = self.dir / "figures" / f"{name}.png"
        if self.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path

    def write_report(self, markdown: str) -> None:
        """Markdown (tables, the paper's claim next to ours) that the report shows for this run."""
        if self.is_main:
            atomic_write_bytes(self.dir / "report.md", markdown.encode())


def execute(
    name: str,
    *,
    quick: bool = False,
    out: Path | str | None = None,
    seed: int = 0,
    sets: list[str] | None = None,
    root: Path | str = "runs",
    preset: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run (or resume, or reuse) an experiment and write its result.json; `preset` names overrides that `sets`
    may refine (the run is identified by the resulting config, not by the preset's name).

    Returns:
        (run folder, result dict).
    """
    exp = get(name)
    config = make_config(exp, quick, sets, preset)
    run_dir = Path(out) if out is not None else Path(root) / f"{name}-{config_hash(name, config, seed)}"
    identity = {"experiment": name, "config": dataclasses.asdict(config), "seed": seed, "quick": quick}
    identity = json.loads(json.dumps(identity))  # tuples become lists, as they are on disk
    ident_path, result_path = run_dir / "run.json", run_dir / "result.json"
    if ident_path.exists():
        try:
            stored = json.loads(ident_path.read_text())
        except ValueError as e:
            raise ConfigError(
                f"{ident_path} is unreadable; choose another --out (nothing was changed)"
            ) from e
        if _with_new_defaults(stored, identity, exp, quick) != identity:
            raise ConfigError(
                f"run folder {run_dir} holds a run with another config or seed; choose another --out "
                "(nothing was changed)"
            )
        if result_path.exists():
            return run_dir, json.loads(result_path.read_text())
    info = dist.current()
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(ident_path, json.dumps(identity, indent=2).encode())
    dist.barrier()
    seed_everything(seed)
    ctx = RunContext(dir=run_dir, seed=seed, quick=quick, device=dist.default_device())
    t0 = time.perf_counter()
    metrics = exp.fn(config, ctx)
    result = {
        **identity,
        "metrics": metrics,
        "seconds": time.perf_counter() - t0,
        "world_size": info.world_size,
        "versions": versions(),
    }
    if info.is_main:
        atomic_write_bytes(result_path, json.dumps(result, indent=2, default=float).encode())
    return run_dir, result


def fmt_value(v: Any) -> str:
    """A table cell: floats to 4 significant digits, anything else as str()."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (report pages and experiment reports share it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt_value(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pool_map(
    fn: Callable[[Any], Any],
    args: Sequence[Any],
    workers: int,
    after: Sequence[Sequence[int]] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield (index, fn(args[index])) as each call finishes: in this process when workers <= 1, else in
    `workers` spawned processes (spawn, so each may open its own CUDA context). `fn` must be a module-level
    function and `args` picklable.

    `after[i]` lists earlier jobs (indices < i) that must finish before job i starts. A free worker takes the
    lowest-index job whose dependencies are done, so a dependent job starts as soon as it can instead of
    waiting for a whole phase (put long jobs first: the short ones then fill the tail)."""
    deps = [set(d) for d in after] if after is not None else [set() for _ in args]
    if len(deps) != len(args) or any(j < 0 or j >= i for i, d in enumerate(deps) for j in d):
        raise ConfigError("pool_map: `after` needs one list per job, each naming only earlier jobs")
    if workers <= 1 or len(args) <= 1:
        for i, a in enumerate(args):  # index order already respects every dependency
            yield i, fn(a)
        return
    ctx = multiprocessing.get_context("spawn")
    waiting, finished = list(range(len(args))), set()
    with ProcessPoolExecutor(min(workers, len(args)), mp_context=ctx) as pool:
        running: dict[Future, int] = {}
        while waiting or running:
            ready = [i for i in waiting if deps[i] <= finished]
            for i in ready[: workers - len(running)]:  # at most `workers` submitted, so priority holds
                waiting.remove(i)
                running[pool.submit(fn, args[i])] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                result = fut.result()
                finished.add(i)
                yield i, result
