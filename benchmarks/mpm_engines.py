"""MPM substep time: taichi vs warp-lang on the spec's water step, and our taichi engine vs the numpy fallback.

    python benchmarks/mpm_engines.py [--quick]

Part 1 runs the same 2-D MLS-MPM water substep (APIC, quadratic B-splines, the mpm88 equation of state) on
taichi (`sparsenets.sim`'s engine) and on warp-lang (a minimal water substep written here, for this measurement
only), both on the CPU with one thread (warp's CPU backend is serial; taichi runs with
SPARSENETS_SIM_THREADS=1, the library default). Part 2 times the library's two engines for water and jelly at
N ∈ {2048, 4096, 16384} on a 64² grid. Part 3 times one seeded 4096-particle, 160-frame trajectory per
material (the issue's ≤ 10 s). Prints Markdown tables (median ms per substep over repeats) and writes
build/bench/mpm_engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sparsenets.sim import Scene, block_scene, make_solver, random_scene, simulate
from sparsenets.sim.materials import MATERIALS
from sparsenets.sim.trajectory import GridSetup

GAP_SUBSTEPS = 50  # substeps after which the two engines' positions are compared


def _median_ms(step: Callable[[int], None], substeps: int, repeats: int) -> float:
    step(substeps)  # warm-up: compile and first-touch
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step(substeps)
        times.append((time.perf_counter() - t) / substeps * 1e3)
    return statistics.median(times)


def _scene(n: int) -> Scene:
    return block_scene(n, (0.3, 0.5), (0.4, 0.4), velocity=(1.0, -1.0), seed=1)


def warp_water(n: int, grid: int) -> tuple[Callable[[int], None], Callable[[], np.ndarray]]:
    """A minimal warp-lang water substep (same scheme as sparsenets.sim) on the CPU: (step(k), positions())."""
    import warp as wp

    wp.config.kernel_cache_dir = os.path.abspath(
        os.path.join(os.environ.get("SPARSE_CACHE", "build/cache"), "warp")
    )
    wp.config.quiet = True
    wp.init()
    scene = _scene(n)
    setup = GridSetup.of(scene, grid, 2e-4)
    E, inv_dx = MATERIALS["water"].E, float(grid)

    @wp.func
    def weights(f: float) -> wp.vec3:
        return wp.vec3(0.5 * (1.5 - f) * (1.5 - f), 0.75 - (f - 1.0) * (f - 1.0), 0.5 * (f - 0.5) * (f - 0.5))

    @wp.kernel
    def p2g(
        x: wp.array(dtype=wp.vec2),
        v: wp.array(dtype=wp.vec2),
        C: wp.array(dtype=wp.mat22),
        J: wp.array(dtype=float),
        gv: wp.array2d(dtype=wp.vec2),
        gm: wp.array2d(dtype=float),
        dt: float,
        p_vol: float,
        p_mass: float,
        E: float,
        inv_dx: float,
    ):
        p = wp.tid()
        xs = x[p] * inv_dx
        bx, by = int(xs[0] - 0.5), int(xs[1] - 0.5)
        fx = xs - wp.vec2(float(bx), float(by))
        wx, wy = weights(fx[0]), weights(fx[1])
        s = -dt * 4.0 * inv_dx * inv_dx * p_vol * E * (J[p] - 1.0)
        affine = wp.mat22(s, 0.0, 0.0, s) + p_mass * C[p]
        for i in range(3):
            for j in range(3):
                dpos = (wp.vec2(float(i), float(j)) - fx) / inv_dx
                w = wx[i] * wy[j]
                wp.atomic_add(gv, bx + i, by + j, w * (p_mass * v[p] + affine * dpos))
                wp.atomic_add(gm, bx + i, by + j, w * p_mass)

    @wp.kernel
    def grid_op(gv: wp.array2d(dtype=wp.vec2), gm: wp.array2d(dtype=float), dt: float, g: float, bound: int):
        i, j = wp.tid()
        n_grid = gm.shape[0]
        if gm[i, j] > 0.0:
            u = gv[i, j] / gm[i, j] - wp.vec2(0.0, dt * g)
            ux, uy = u[0], u[1]
            if i <= bound:
                ux = wp.max(ux, 0.0)
            if i >= n_grid - bound:
                ux = wp.min(ux, 0.0)
            if j <= bound:
                uy = wp.max(uy, 0.0)
            if j >= n_grid - bound:
                uy = wp.min(uy, 0.0)
            gv[i, j] = wp.vec2(ux, uy)

    @wp.kernel
    def g2p(
        x: wp.array(dtype=wp.vec2),
        v: wp.array(dtype=wp.vec2),
        C: wp.array(dtype=wp.mat22),
        J: wp.array(dtype=float),
        gv: wp.array2d(dtype=wp.vec2),
        dt: float,
        inv_dx: float,
    ):
        p = wp.tid()
        xs = x[p] * inv_dx
        bx, by = int(xs[0] - 0.5), int(xs[1] - 0.5)
        fx = xs - wp.vec2(float(bx), float(by))
        wx, wy = weights(fx[0]), weights(fx[1])
        nv = wp.vec2(0.0, 0.0)
        nC = wp.mat22(0.0, 0.0, 0.0, 0.0)
        for i in range(3):
            for j in range(3):
                dpos = (wp.vec2(float(i), float(j)) - fx) / inv_dx
                w = wx[i] * wy[j]
                u = gv[bx + i, by + j]
                nv += w * u
                nC += (4.0 * inv_dx * inv_dx * w) * wp.outer(u, dpos)
        v[p] = nv
        C[p] = nC
        lo, hi = 1.0 / inv_dx, 1.0 - 2.0 / inv_dx
        y = x[p] + dt * nv
        x[p] = wp.vec2(wp.clamp(y[0], lo, hi), wp.clamp(y[1], lo, hi))
        J[p] = J[p] * (1.0 + dt * (nC[0, 0] + nC[1, 1]))

    dev = "cpu"
    x = wp.array(scene.positions, dtype=wp.vec2, device=dev)
    v = wp.array(scene.velocities, dtype=wp.vec2, device=dev)
    C = wp.zeros(n, dtype=wp.mat22, device=dev)
    J = wp.array(np.ones(n, np.float32), dtype=float, device=dev)
    gv = wp.zeros((grid, grid), dtype=wp.vec2, device=dev)
    gm = wp.zeros((grid, grid), dtype=float, device=dev)
    dt = setup.dt

    def step(k: int) -> None:
        for _ in range(k):
            gv.zero_()
            gm.zero_()
            wp.launch(p2g, n, [x, v, C, J, gv, gm, dt, setup.p_vol, setup.p_mass, E, inv_dx], device=dev)
            wp.launch(grid_op, (grid, grid), [gv, gm, dt, setup.gravity, setup.bound], device=dev)
            wp.launch(g2p, n, [x, v, C, J, gv, dt, inv_dx], device=dev)
        wp.synchronize()

    return step, x.numpy


def engine_vs_warp(sizes: list[tuple[int, int]], substeps: int, repeats: int) -> list[dict]:
    """Part 1: ms per water substep, taichi engine vs warp, and their max position gap after GAP_SUBSTEPS."""
    rows = []
    for n, grid in sizes:
        taichi = make_solver(_scene(n), "water", grid=grid)
        warp_step, warp_pos = warp_water(n, grid)
        taichi.substep(GAP_SUBSTEPS)
        warp_step(GAP_SUBSTEPS)
        # same scheme, so the same positions up to float32 round-off (which a splash amplifies later on)
        gap = float(np.abs(taichi.positions() - warp_pos()).max())
        t_ms = _median_ms(taichi.substep, substeps, repeats)
        w_ms = _median_ms(warp_step, substeps, repeats)
        rows.append({"N": n, "grid": grid, "taichi_ms": t_ms, "warp_ms": w_ms, "max_position_gap": gap})
        print(f"| {n} | {grid}² | {t_ms:.3f} | {w_ms:.3f} | {w_ms / t_ms:.2f}× | {gap:.1e} |", flush=True)
    return rows


def engine_vs_numpy(sizes: list[int], substeps: int, repeats: int) -> list[dict]:
    """Part 2: ms per substep, taichi engine vs numpy fallback, water and jelly, 64² grid."""
    rows = []
    for name in ("water", "jelly"):
        for n in sizes:
            t_ms = _median_ms(make_solver(_scene(n), name).substep, substeps, repeats)
            np_ms = _median_ms(
                make_solver(_scene(n), name, engine="numpy").substep, max(2, substeps // 10), repeats
            )
            rows.append({"material": name, "N": n, "taichi_ms": t_ms, "numpy_ms": np_ms})
            print(f"| {name} | {n} | {t_ms:.3f} | {np_ms:.2f} | {np_ms / t_ms:.1f}× |", flush=True)
    return rows


def trajectory_times(n: int, frames: int) -> list[dict]:
    """Part 3: seconds per seeded n-particle, `frames`-frame trajectory (taichi, after compile), per material."""
    rows = []
    for name in MATERIALS:
        simulate(random_scene(0, 64), name, frames=2)  # compile outside the timing
        t = time.perf_counter()
        simulate(random_scene(0, n), name, frames=frames)
        seconds = time.perf_counter() - t
        rows.append({"material": name, "N": n, "frames": frames, "seconds": seconds})
        print(f"| {name} | {n} | {frames} | {seconds:.1f} |", flush=True)
    return rows


def main() -> None:
    """Run both parts and write build/bench/mpm_engines.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer substeps and repeats (a smoke run)")
    args = ap.parse_args()
    substeps, repeats = (50, 2) if args.quick else (250, 5)
    print(
        "| N | grid | taichi ms/substep | warp ms/substep | warp / taichi | max |Δx| after 50 substeps |\n|---|---|---|---|---|---|"
    )
    part1 = engine_vs_warp([(4096, 64), (8192, 128)], substeps, repeats)
    print("\n| material | N | taichi ms/substep | numpy ms/substep | numpy / taichi |\n|---|---|---|---|---|")
    part2 = engine_vs_numpy([2048, 4096, 16384], substeps, repeats)
    print("\n| material | N | frames | s per trajectory |\n|---|---|---|---|")
    part3 = trajectory_times(4096, 40 if args.quick else 160)
    out = Path("build/bench")
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "threads": os.environ.get("SPARSENETS_SIM_THREADS", "1"),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
    }
    (out / "mpm_engines.json").write_text(
        json.dumps({"warp": part1, "numpy": part2, "trajectory": part3, "machine": meta}, indent=1)
    )


if __name__ == "__main__":
    main()
