"""`giorom-water2d`, `giorom-jelly2d`, `giorom-sand2d`: the GIOROM study (study.py) on one generated 2-D MPM
material each (N = 4096, plus timing at 16k); they differ only in the material."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sparsenets.experiments.giorom.study import QUICK, StudyConfig, check, run_study
from sparsenets.runs import RunContext, experiment

MATERIALS = {
    "water": "MPM water (weakly compressible fluid)",
    "jelly": "MPM jelly (fixed-corotated elastic)",
    "sand": "MPM sand (Drucker–Prager)",
}


@dataclass
class Config(StudyConfig):
    """Hyper-parameters of the `giorom-<material>2d` experiments (every field is documented on `StudyConfig`)."""


def _run(material: str, cfg: Config, ctx: RunContext) -> dict[str, Any]:
    return run_study(cfg, ctx, material)


for _material, _label in MATERIALS.items():
    experiment(
        f"giorom-{_material}2d",
        Config,
        quick=QUICK,
        check=check,
        description=f"GIOROM-lite (sparse stepper + kernel decoder) vs a full-order GNS on {_label}, N = 4096: "
        "rollout error and step time vs M/N",
    )(functools.partial(_run, _material))
