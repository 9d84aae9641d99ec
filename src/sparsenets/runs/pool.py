"""`pool_map`: sub-runs (seeds, methods) in spawned worker processes, with dependencies between jobs."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

import torch

from sparsenets.errors import ConfigError


def _init_worker(threads: int, parent: int) -> None:
    """A worker's start: the parent's torch thread count, and a watcher that ends the worker once its parent is
    gone (a killed study must not leave workers running as orphans)."""
    torch.set_num_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="sparsenets-parent-watch").start()


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
    waiting for a whole phase (put long jobs first: the short ones then fill the tail). Each worker runs with this
    process's torch thread count (the run's `threads`)."""
    deps = [set(d) for d in after] if after is not None else [set() for _ in args]
    if len(deps) != len(args) or any(j < 0 or j >= i for i, d in enumerate(deps) for j in d):
        raise ConfigError("pool_map: `after` needs one list per job, each naming only earlier jobs")
    if workers <= 1 or len(args) <= 1:
        for i, a in enumerate(args):  # index order already respects every dependency
            yield i, fn(a)
        return
    ctx = multiprocessing.get_context("spawn")
    waiting, finished = list(range(len(args))), set()
    pool_args = {
        "mp_context": ctx,
        "initializer": _init_worker,
        "initargs": (torch.get_num_threads(), os.getpid()),
    }
    with ProcessPoolExecutor(min(workers, len(args)), **pool_args) as pool:
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
