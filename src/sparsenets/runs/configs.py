"""A run's config: the experiment's dataclass filled from defaults, `--quick`, a preset and `--set KEY=VALUE`.

`RunConfig` is the base every experiment config may extend: the fields the runner itself applies (threads).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from sparsenets.errors import ConfigError
from sparsenets.runs.registry import Experiment


@dataclass
class RunConfig:
    """Fields the runner applies before the run function starts, so no experiment repeats them.

    Attributes:
        threads: torch CPU threads of the run and of every worker process `pool_map` spawns.
    """

    threads: int = 1


@dataclass
class PoolConfig(RunConfig):
    """`RunConfig` for studies that run sub-runs (seeds, methods) in worker processes through `pool_map`.

    Attributes:
        workers: sub-runs in parallel processes (1: one after the other in this process).
    """

    workers: int = 1


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
