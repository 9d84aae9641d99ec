"""SIGKILL at seeded random points of two real experiments, then the same run again (issue 30).

`mlp-mnist` (real MNIST, a checkpoint every 10 steps, so rotation happens) and `grokking-tickets` (a dense phase and
a controls phase, each a Trainer in its own sub-folder, plus masks) run in tiny settings. A forked copy of this
process runs the experiment and sends itself SIGKILL at the k-th call of a kill point (an optimizer step, a log
line, half a log line, a checkpoint rotation, a tensor file without its sidecar, a temp file before its rename,
the write of result.json); k is drawn by a seeded generator from the number of such calls that an uninterrupted
run makes, so every kill is reproducible. The run is then started again in the same folder, and its metrics,
every metrics.jsonl and the set of files must equal those of the uninterrupted run, byte for byte.

`benchmarks/kill_resume.py` runs this campaign with figures drawn and prints its table (docs/robustness.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from sparsenets import files, runs
from sparsenets.train import checkpoint, dist, loop

torch.set_num_threads(1)

EXPERIMENTS = {  # tiny settings of two registered experiments
    "mlp-mnist": [
        "hidden=[32]",
        "batch_size=32",
        "train_limit=1280",
        "epochs=1",
        "checkpoint_every=10",
        "eval_every=4",
    ],
    "grokking-tickets": [
        "p=11",
        "seeds=1",
        "dense_steps=40",
        "dense_max_steps=40",
        "control_steps=20",
        "mem_step=20",
        "eval_every=10",
        "synflow_rounds=2",
        "threads=1",
    ],
}
SEED = 30  # of the kill points: a failure replays exactly


@dataclass(frozen=True)
class Kill:
    """SIGKILL at the k-th call of `point` (a key of POINTS) in one run."""

    point: str
    k: int

    def __str__(self) -> str:
        return f"{self.point} #{self.k}"


def _execute_module() -> Any:
    return sys.modules["sparsenets.runs.execute"]  # the package exports a function of that name


# point → (what is interrupted, owner, attribute, the call is counted before (True) or after (False) it runs)
POINTS: dict[str, tuple[str, Callable[[], Any], str, bool]] = {
    "step": ("before an optimizer step", lambda: None, "", True),
    "log": ("after a metrics.jsonl line", lambda: loop.Trainer, "_log", False),
    "torn-log": ("half-way through a metrics.jsonl line", lambda: loop.Trainer, "_log", True),
    "rotation": ("after one file of a rotation's delete", lambda: checkpoint, "_delete", False),
    "no-sidecar": (
        "tensor file renamed, sidecar not written",
        lambda: checkpoint,
        "atomic_write_bytes",
        True,
    ),
    "not-renamed": ("a complete temp file, not renamed", lambda: files, "_fsync_replace", True),
    "no-result": ("trained, result.json not written", _execute_module, "atomic_write_bytes", True),
}


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install(point: str, on_call: Callable[[int, tuple], None], patch: Patch) -> None:
    """Call `on_call(n, args)` at the n-th call of `point` (counting only calls that write a run's files)."""
    calls = [0]

    def count(args: tuple) -> None:
        calls[0] += 1
        on_call(calls[0], args)

    if point == "step":
        patch.stack.callback(register_optimizer_step_pre_hook(lambda opt, args, kw: count(())).remove)
        return
    _, owner_of, name, before = POINTS[point]
    owner = owner_of()
    inner = getattr(owner, name)

    def wrapped(*args: Any, **kw: Any) -> Any:
        counted = point not in ("log", "torn-log") or args[0].run_dir is not None
        if counted and before:
            count(args)
        out = inner(*args, **kw)
        if counted and not before:
            count(args)
        return out

    patch.mp.setattr(owner, name, wrapped)


@dataclass
class Patch:
    """What `patched` changes, undone when it ends."""

    mp: pytest.MonkeyPatch
    stack: contextlib.ExitStack


@contextlib.contextmanager
def patched(figures: bool) -> Iterator[Patch]:
    """A scope for kill points and counters, on the CPU; without `figures`, figures are closed without being drawn
    (drawing is 70% of a tiny grokking run, and nothing here reads them)."""
    import matplotlib.pyplot as plt

    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as stack:
        # on the CPU even where CUDA is present: a forked child must not touch a CUDA context
        mp.setattr(dist, "default_device", lambda: torch.device("cpu"))
        if not figures:
            mp.setattr(runs.RunContext, "save_figure", lambda self, fig, name: plt.close(fig))
        yield Patch(mp, stack)


def _kill_at(kill: Kill, patch: Patch) -> None:
    def on_call(n: int, args: tuple) -> None:
        if n != kill.k:
            return
        if kill.point == "torn-log":  # write half of the line the Trainer was about to append
            trainer, record = args
            line = json.dumps(record) + "\n"
            with open(trainer.run_dir / "metrics.jsonl", "a") as f:
                f.write(line[: len(line) // 2])
        _sigkill()

    _install(kill.point, on_call, patch)


def run_killed(name: str, out: Path, kill: Kill, figures: bool) -> None:
    """Run experiment `name` into `out` in a forked process that SIGKILLs itself at `kill`.

    Raises:
        AssertionError: the process ended otherwise (the kill point was never reached, or the run failed).
    """
    pid = os.fork()
    if pid == 0:
        code = 3  # the kill point was never reached
        try:
            with patched(figures) as patch:
                _kill_at(kill, patch)
                runs.execute(name, sets=EXPERIMENTS[name], out=out)
        except BaseException:
            traceback.print_exc()
            code = 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    ended = os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
    assert ended == signal.SIGKILL, f"{name} {kill}: {'never reached' if ended == -3 else 'failed'}"


def run_clean(name: str, out: Path, figures: bool) -> tuple[dict[str, Any], dict[str, int], int]:
    """An uninterrupted run, counting the calls of every kill point.

    Returns:
        (its result, calls per point, optimizer steps before the first checkpoint was saved).
    """
    counts = dict.fromkeys(POINTS, 0)
    first_save: list[int] = []

    def counter(point: str) -> Callable[[int, tuple], None]:
        def on_call(n: int, args: tuple) -> None:
            counts[point] = n

        return on_call

    with patched(figures) as patch:
        for point in POINTS:
            if point != "torn-log":  # the same calls as "log"
                _install(point, counter(point), patch)
        save = loop.save_checkpoint

        def first_saves(*args: Any, **kw: Any) -> Path:
            first_save.append(counts["step"])
            return save(*args, **kw)

        patch.mp.setattr(loop, "save_checkpoint", first_saves)
        _, result = runs.execute(name, sets=EXPERIMENTS[name], out=out)
    counts["torn-log"] = counts["log"]
    return result, counts, first_save[0]


def campaign(
    name: str, counts: dict[str, int], first_checkpoint: int, n: int, rng: random.Random
) -> list[list[Kill]]:
    """`n` kill sequences for one experiment: the first is before its first checkpoint, the second inside a
    rotation (between a sidecar's delete and its tensor file's, when the run rotates), one kills a resumed run
    again; the rest visit every point the run reaches (in a seeded order, each once before any repeats), each
    at a seeded random call."""
    # before the first checkpoint, with a logged line (both settings log before step first_checkpoint / 2)
    plans = [[Kill("step", rng.randint(first_checkpoint // 2 + 1, first_checkpoint))]]
    if counts["rotation"]:
        plans.append([Kill("rotation", rng.randrange(1, counts["rotation"] + 1, 2))])
    plans.append([Kill("step", rng.randint(1, counts["step"])), Kill("step", rng.randint(1, 3))])
    plans.append([Kill("no-result", 2)])  # call 1 writes run.json
    points = [p for p in POINTS if counts[p] and p != "no-result"]
    order: list[str] = []
    while len(plans) < n:
        order = order or rng.sample(points, len(points))
        point = order.pop()
        plans.append([Kill(point, rng.randint(1, counts[point]))])
    return plans[:n]


def files_of(folder: Path) -> list[str]:
    """Every file below `folder` except the lock, as relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


def logs_of(folder: Path) -> dict[str, bytes]:
    """Every metrics.jsonl below `folder`, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("metrics.jsonl")}


def kill_and_rerun(name: str, out: Path, plan: list[Kill], clean: Path, figures: bool) -> dict[str, Any]:
    """Apply `plan` to a fresh `out`, run again, compare with the uninterrupted run in `clean`.

    Returns:
        {"identical": bool, "differs": what differs (empty when identical), "rerun_s": seconds of the rerun}.
    """
    for kill in plan:
        run_killed(name, out, kill, figures)
    t0 = time.perf_counter()
    with patched(figures):
        _, resumed = runs.execute(name, sets=EXPERIMENTS[name], out=out)
    rerun_s = time.perf_counter() - t0
    reference = json.loads((clean / "result.json").read_text())
    differs = [
        what
        for what, same in (
            ("metrics", resumed["metrics"] == reference["metrics"]),
            ("result.json", json.loads((out / "result.json").read_text())["metrics"] == reference["metrics"]),
            ("metrics.jsonl", logs_of(out) == logs_of(clean)),
            ("files", files_of(out) == files_of(clean)),
        )
        if not same
    ]
    return {"identical": not differs, "differs": differs, "rerun_s": rerun_s}


KILLS_PER_EXPERIMENT = {"mlp-mnist": 11, "grokking-tickets": 9}  # 20 in all


@pytest.fixture(scope="module", params=list(EXPERIMENTS))
def clean(request, tmp_path_factory) -> tuple[str, Path, list[list[Kill]]]:
    """An uninterrupted run of one experiment and its seeded kill plans."""
    name = request.param
    out = tmp_path_factory.mktemp(name) / "clean"
    _, counts, first = run_clean(name, out, figures=False)
    rng = random.Random(f"{SEED}-{name}")
    return name, out, campaign(name, counts, first, KILLS_PER_EXPERIMENT[name], rng)


def test_twenty_kills_across_two_experiments_resume_byte_identical(clean, tmp_path) -> None:
    name, reference, plans = clean
    assert len(plans) == KILLS_PER_EXPERIMENT[name]
    failed = []
    for i, plan in enumerate(plans):
        got = kill_and_rerun(name, tmp_path / f"run{i}", plan, reference, figures=False)
        if not got["identical"]:
            failed.append(f"{' + '.join(map(str, plan))}: {', '.join(got['differs'])} differ")
    assert not failed, failed
