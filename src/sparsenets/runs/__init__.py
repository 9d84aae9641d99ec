"""Experiments as typed configs plus a run function; run folders named by a hash of the config; result.json.

An experiment module under `sparsenets/experiments/<method>/` registers itself:

    @dataclass
    class Config(RunConfig):          # RunConfig adds `threads`, applied by the runner
        steps: int = 1000
        lr: float = 1e-3

    @experiment("mlp-mnist", Config, quick={"steps": 50}, description="Dense MLP on MNIST")
    def run(cfg: Config, ctx: RunContext) -> dict: ...

`run` returns a JSON-serialisable dict of metrics; the runner writes result.json around it. Inside: `registry`
(names → experiments), `configs` (defaults, quick, presets, --set), `identity` (hash, versions), `context`
(RunContext), `execute` (run/resume/reuse), `pool` (worker processes), `tables` (Markdown).
"""

from sparsenets.runs.configs import PoolConfig, RunConfig, make_config
from sparsenets.runs.context import RunContext
from sparsenets.runs.execute import execute
from sparsenets.runs.identity import config_hash, versions
from sparsenets.runs.pool import pool_map
from sparsenets.runs.registry import REGISTRY, Experiment, discover, experiment, get
from sparsenets.runs.tables import fmt_value, md_table

__all__ = [
    "REGISTRY",
    "Experiment",
    "PoolConfig",
    "RunConfig",
    "RunContext",
    "config_hash",
    "discover",
    "execute",
    "experiment",
    "fmt_value",
    "get",
    "make_config",
    "md_table",
    "pool_map",
    "versions",
]
