"""A run's config: the experiment's dataclass filled from defaults, `--quick`, a preset and `--set KEY=VALUE`,
then validated on one path (`validate_config`) before anything is written.

`RunConfig` is the base every experiment config may extend: the fields the runner itself applies (threads).
The validation is generic: types from the dataclass annotations, every float finite, and the ranges of `RULES`
chosen by the field's name (docs/robustness.md carries the same table). An experiment with other needs keeps
its own `check(config)` in its registration.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
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


INF = math.inf
INT_MAX = 2**31 - 1  # larger counts overflow torch's and numpy's index and seed types; no run here needs them


@dataclass(frozen=True)
class Rule:
    """The allowed range of every number (a field, or each element of a tuple field) whose name matches
    `pattern` (a full-match regex); the first matching rule of `RULES` applies."""

    pattern: str
    lo: float
    hi: float
    lo_open: bool
    hi_open: bool
    why: str

    def allows(self, x: float) -> bool:
        """True when `x` lies in the rule's range."""
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def range_text(self) -> str:
        """The range in interval notation, e.g. `(0, inf)`."""
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


# The one table of name-based ranges (docs/robustness.md repeats it); order matters: first match wins.
RULES: tuple[Rule, ...] = (
    Rule(r"(.+_)?lrs?(_.+)?", 0, INF, True, True, "0 trains nothing; a negative rate ascends"),
    Rule(r"epochs", 1, INF, False, True, "a run trains at least one epoch"),
    Rule(r".+_epochs", 0, INF, False, True, "an extra phase (warm-up, fine-tune) may be skipped with 0"),
    Rule(r"(.+_)?steps(_.+)?", 1, INF, False, True, "a run or phase trains at least one step"),
    Rule(r"(.+_)?warmup", 0, INF, False, True, "a warm-up of 0 steps is none"),
    Rule(r"(.+_)?batch(_size)?", 1, INF, False, True, "a batch holds at least one example"),
    Rule(r"(.+_)?seeds", 1, INF, False, True, "a study runs at least one seed"),
    Rule(r"(eval|checkpoint|log)_every", 0, INF, False, True, "the Trainer's interval; 0: only at the end"),
    Rule(r".+_every", 1, INF, False, True, "an interval in steps"),
    Rule(r"(.+_)?limit", 0, INF, False, True, "a data limit; 0: all of the data"),
    Rule(r"dropout", 0, 1, False, True, "a probability; 1 drops everything"),
    Rule(r"(.+_)?rates?(_.+)?", 0, 1, False, True, "a pruning rate; 1 prunes everything"),
    Rule(r"threads|workers", 1, INF, False, True, "at least one thread / process"),
    Rule(r"(.+_)?weight_decay", 0, INF, False, True, "negative decay grows the weights"),
    Rule(r"(.+_)?lam(_.+)?", 0, INF, False, True, "a penalty weight; negative rewards large groups"),
    Rule(r"keep", 0, 1, True, False, "a keep ratio must be in (0, 1]; 1 keeps all"),
    Rule(r"(.+_)?size", 1, INF, False, True, "a size or count of examples"),
    Rule(r"(.+_)?period", 1, INF, False, True, "a period in steps"),
    Rule(r"(.+_)?temperature", 0, INF, True, True, "a softmax temperature divides the logits"),
    Rule(r"distill", 0, INF, False, True, "a loss weight"),
    Rule(r"(.+_)?(repeat|reps|rounds)", 1, INF, False, True, "at least one repetition"),
    Rule(r"(.+_)?width", 0, INF, True, True, "a layer width (or width multiplier)"),
    Rule(r"hidden", 1, INF, False, True, "a hidden layer has at least one unit"),
)


def rule_for(name: str) -> Rule | None:
    """The first rule of `RULES` whose pattern matches the whole field name, or None."""
    return next((r for r in RULES if re.fullmatch(r.pattern, name)), None)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return "list (JSON, e.g. [1, 2])"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _check_value(name: str, value: Any, tp: Any, shown: str) -> None:
    """Raise a ConfigError unless `value` has type `tp` and its numbers are finite and in `name`'s range."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _check_value(name, value, inner[0], shown)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple | list):
            raise ConfigError(f"config {shown}: expected a list of values (e.g. [1, 2]), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(value) != len(args):
            raise ConfigError(f"config {shown}: expected exactly {len(args)} values, got {len(value)}")
        for v, a in zip(value, args, strict=True):
            _check_value(name, v, a, shown)
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config {shown}: expected true or false, got {value!r}")
        return
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"config {shown}: expected an integer, got {value!r}")
    if tp is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"config {shown}: expected a number, got {value!r}")
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"config {shown}: expected a string, got {value!r}")
    if tp in (int, float):
        if not math.isfinite(value):
            raise ConfigError(f"config {shown}: must be a finite number")
        if tp is int and abs(value) > INT_MAX:
            raise ConfigError(f"config {shown}: {value} is out of range (|value| <= {INT_MAX})")
        rule = rule_for(name)
        if rule is not None and not rule.allows(value):
            raise ConfigError(f"config {shown}: {value!r} is outside {rule.range_text()} ({rule.why})")


def validate_config(config: Any) -> Any:
    """Check every field of a config dataclass against its annotated type and `RULES`; return the config.

    Raises:
        ConfigError: naming the first bad field, its value and the allowed range, in one line.
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        _check_value(f.name, value, hints[f.name], f"{f.name}={value!r}")
    # a data limit, when set, must hold one batch: otherwise the run fails after its folder exists
    limit, batch = getattr(config, "train_limit", 0), getattr(config, "batch_size", None)
    if isinstance(limit, int) and isinstance(batch, int) and 0 < limit < batch:
        raise ConfigError(f"config train_limit={limit} is smaller than one batch (batch_size={batch})")
    return config


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
        if origin is tuple and not isinstance(value, list):
            raise ValueError(text)  # json.loads("5") is no list; tuple(5) would raise a TypeError
        return tuple(value) if origin is tuple else value
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"--set {key}={text}: expected a value of type {_type_name(tp)}") from e


def make_config(
    exp: Experiment, quick: bool = False, sets: list[str] | None = None, preset: str | None = None
) -> Any:
    """Build the config: defaults, then the quick overrides, then the named preset, then each `key=value` of
    `sets`; then `validate_config` (types, finiteness, `RULES`), so a bad config fails before any folder."""
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
    return validate_config(exp.config_cls(**values))


def _with_new_defaults(stored: dict[str, Any], identity: dict[str, Any], exp: Experiment, quick: bool) -> Any:
    """`stored` with the config keys it lacks filled in, where this run leaves them at their defaults: a folder
    written before a config key existed still resumes, unless this run sets that key to something else."""
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        return stored
    defaults = json.loads(json.dumps(dataclasses.asdict(make_config(exp, quick))))
    now = identity["config"]
    added = {k: now[k] for k in now.keys() - stored["config"].keys() if now[k] == defaults.get(k, object())}
    return {**stored, "config": {**stored["config"], **added}}
