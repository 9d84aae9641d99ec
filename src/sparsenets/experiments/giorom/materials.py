"""`giorom-water2d`, `giorom-jelly2d`, `giorom-sand2d`: the GIOROM study (study.py) on one generated 2-D MPM
material each (N = 4096, plus timing at 16k); they differ only in the material. `giorom-2d` runs the whole study
(water and jelly) with one command, one sub-folder per material."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsenets.errors import ConfigError
from sparsenets.experiments.giorom.report import claims
from sparsenets.experiments.giorom.study import QUICK, StudyConfig, check, run_study
from sparsenets.files import atomic_write_bytes
from sparsenets.runs import RunContext, experiment, md_table

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


@dataclass
class BothConfig(StudyConfig):
    """Hyper-parameters of `giorom-2d`: the study's fields (on `StudyConfig`), shared by every material.

    Attributes:
        materials: the materials studied one after the other, each in its own sub-folder (`water/`, `jelly/`).
    """

    materials: tuple[str, ...] = ("water", "jelly")


def check_both(cfg: BothConfig) -> None:
    """`check` of the study plus known, distinct materials (one line, before the run folder exists)."""
    check(cfg)
    bad = [m for m in cfg.materials if m not in MATERIALS]
    if bad or not cfg.materials or len(set(cfg.materials)) != len(cfg.materials):
        raise ConfigError(
            f"materials {list(cfg.materials)}: give distinct names from {sorted(MATERIALS)} (unknown: {bad})"
        )


def _copy_figures(source: Path, target: Path, material: str, ctx: RunContext) -> None:
    """A material's PNGs into the top-level figures/ (the report shows those), named main-<m>-… or <m>-…."""
    if not ctx.is_main:
        return
    (target / "figures").mkdir(parents=True, exist_ok=True)
    for png in sorted((source / "figures").glob("*.png")):
        stem = png.name.removeprefix("main-")
        name = f"main-{material}-{stem}" if stem != png.name else f"{material}-{png.name}"
        atomic_write_bytes(target / "figures" / name, png.read_bytes())


def _claim_row(claim: str, by: dict[str, tuple[str, str, str]], materials: tuple[str, ...]) -> list[str]:
    """One claim across materials: the shared bound in "needed", else each cell names its own (it depends on the
    material's no-model error); "—" where a material has no such row."""
    bounds = {needed for needed, _, _ in by.values()}
    shared = len(bounds) == 1
    cells = {
        m: f"{ours} — {verdict}" if shared else f"{ours} ({needed}) — {verdict}"
        for m, (needed, ours, verdict) in by.items()
    }
    return [claim, bounds.pop() if shared else "per material", *(cells.get(m, "—") for m in materials)]


@experiment(
    "giorom-2d",
    BothConfig,
    quick=QUICK,
    check=check_both,
    description="The whole GIOROM study in one command: water then jelly (N = 4096), each in its own sub-folder, "
    "one claim table across materials; resumable",
)
def run_both(cfg: BothConfig, ctx: RunContext) -> dict[str, Any]:
    """Run `run_study` for each material in ctx.dir/<material>/ (each phase cached there, so a killed run resumes
    where it stopped); the report leads with every material's claim rows, then each material's own report."""
    metrics: dict[str, Any] = {}
    cells: dict[str, dict[str, tuple[str, str, str]]] = {}  # claim → material → (needed, ours, verdict)
    sections = []
    for material in cfg.materials:
        sub = dataclasses.replace(ctx, dir=ctx.subdir(material))
        head = run_study(cfg, sub, material)
        metrics.update({f"{material}_{k}": v for k, v in head.items() if not isinstance(v, dict)})
        res = json.loads((sub.dir / "results.json").read_text())
        for claim, needed, ours, verdict in claims(res):
            cells.setdefault(claim, {})[material] = (needed, ours, verdict)
        text = (sub.dir / "report.md").read_text().replace("`figures/", f"`{material}/figures/")
        sections.append(f"### {material}\n\n{text}")
        _copy_figures(sub.dir, ctx.dir, material, ctx)
    smoke = " (smoke run: tiny sets, few steps — no verdict)" if ctx.quick else ""
    lead = f"**GIOROM on {' and '.join(cfg.materials)}, N = {cfg.n_particles}: the issue's claims{smoke}**"
    table = md_table(
        ["claim", "needed", *cfg.materials], [_claim_row(c, by, cfg.materials) for c, by in cells.items()]
    )
    ctx.write_report("\n\n".join([lead, table, *sections]) + "\n")
    return metrics
