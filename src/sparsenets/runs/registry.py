"""The experiment registry: `@experiment(name, Config, ...)` registers a run function; `discover` imports every
module under `sparsenets.experiments` (its per-method folders included), so adding one edits no central list."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparsenets.errors import ConfigError

if TYPE_CHECKING:
    from sparsenets.runs.context import RunContext

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
    check: Callable[[Any], None] | None = None  # validates a config before anything is written


REGISTRY: dict[str, Experiment] = {}


def experiment(
    name: str,
    config_cls: type,
    quick: dict[str, Any] | None = None,
    description: str = "",
    presets: dict[str, dict[str, Any]] | None = None,
    check: Callable[[Any], None] | None = None,
) -> Callable[[RunFn], RunFn]:
    """Register `fn(config, ctx) -> metrics` under `name` (a decorator); `presets` maps a name to overrides;
    `check(config)` raises a ConfigError for a config the run would reject, before its folder is made."""
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
            check,
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
