"""What did a trained stepper learn? One-step predictions of a study arm on the true history of the test
trajectories: the particles' mean true acceleration (second difference of positions) against the model's, at a few
start frames. The jelly check in docs/methods/giorom.md ("the wall bounce is not learned") comes from this:

    PYTHONPATH=src python benchmarks/giorom_one_step.py --run runs/giorom-2d --material jelly --arm "A'"

`--run` is a finished `giorom-2d` run folder (or a `giorom-<material>2d` one with `--material` set to its
material and `--flat`); the arm is any of A, A', B<M> (B arms predict on their M sampled particles).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from sparsenets.experiments.giorom import arms as A
from sparsenets.experiments.giorom.study import StudyConfig, make_arms


def _mean(acc: torch.Tensor) -> str:
    """acc [M, d] → "(x, y)" of its mean over particles."""
    return "(" + ", ".join(f"{x:+.2e}" for x in acc.mean(0).tolist()) + ")"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="the giorom-2d run folder")
    p.add_argument("--material", default="jelly", choices=["water", "jelly", "sand"])
    p.add_argument("--arm", default="A'", help="A, A', or B<M> (e.g. B256)")
    p.add_argument("--flat", action="store_true", help="--run is a one-material run folder (no sub-folder)")
    p.add_argument("--frames", type=int, nargs="+", default=[0, 10, 30], help="start frames of the history")
    a = p.parse_args()
    folder = a.run if a.flat else a.run / a.material
    if not (folder / f"arm-{a.arm}" / "model.safetensors").exists():
        p.error(f"no trained arm {a.arm!r} under {folder}: give a finished run folder and an arm it trained")
    torch.set_num_threads(1)
    run_file = a.run / "run.json"  # the run's own config (noise, target, features), else the study's defaults
    cfg = {
        **dataclasses.asdict(StudyConfig()),
        **(json.loads(run_file.read_text())["config"] if run_file.exists() else {}),
    }
    test = A.load_split(a.material, cfg, "test")
    arm = {x.name: x for x in make_arms(StudyConfig(), test.metadata["radius"])}[a.arm]
    model = A.load_stepper(cfg, test.metadata, arm, folder / f"arm-{a.arm}")
    n, c1 = test.positions.shape[2], A.HISTORY + 1
    ids = A.arm_ids(test, arm.m, n, cfg["sampling"])
    print(f"{a.material}, arm {a.arm}: mean acceleration per frame², true vs predicted (x, y)")
    for k in range(test.positions.shape[0]):
        pos = test.positions[k][:, ids[k]]  # [T, M, d]
        for t0 in a.frames:
            with torch.no_grad():
                pred = model({"pos": pos[t0 : t0 + c1].transpose(0, 1), "types": test.types[k, ids[k]]})[
                    "acc"
                ]
            true = pos[t0 + c1] - 2 * pos[t0 + c1 - 1] + pos[t0 + c1 - 2]
            print(f"  trajectory {k}, frames {t0}–{t0 + c1}: true {_mean(true)}  predicted {_mean(pred)}")


if __name__ == "__main__":
    main()
