"""The MLS-MPM engine on taichi (CPU, float32): one compiled substep kernel per material, launched 25 at a time
through a `ti.graph`.

The substep is the one of `sparsenets.sim.mpm_numpy` (its docstring has the pseudo-code) and the constitutive
funcs mirror `sparsenets.sim.materials`. P2G runs serially: taichi's parallel float atomics sum in thread order,
which made two identical float32 runs differ by ~3e-6 after 400 substeps; serial P2G (~10 % slower) makes
trajectories bitwise reproducible. The grid and G2P loops have no races and may run on several threads.
"""

# no `from __future__ import annotations`: taichi reads the annotations of its funcs and kernels as types
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from sparsenets.sim.materials import MIN_SINGULAR, Material
from sparsenets.sim.scenes import Scene
from sparsenets.sim.trajectory import GridSetup

os.environ.setdefault("TI_SKIP_VERSION_CHECK", "ON")  # no network probe at import
import taichi as ti

vec2, mat2 = ti.math.vec2, ti.math.mat2
_STATE: dict[str, bool] = {"ready": False}


def init_taichi() -> None:
    """`ti.init` once per process on the CPU, with its offline cache under $SPARSE_CACHE (default build/cache) and
    $SPARSENETS_SIM_THREADS threads (default 1: a substep's loops are too short to amortise waking a second
    thread; on the shared 2-core box 1 thread ran a 4096-particle substep in 0.9 ms, 2 threads in 2.9 ms)."""
    if not _STATE["ready"]:
        cache = os.path.join(os.environ.get("SPARSE_CACHE", "build/cache"), "taichi")
        ti.init(
            arch=ti.cpu,
            cpu_max_num_threads=int(os.environ.get("SPARSENETS_SIM_THREADS", "1")),
            default_fp=ti.f32,
            random_seed=0,
            offline_cache_file_path=os.path.abspath(cache),
            log_level=ti.WARN,
        )
        _STATE["ready"] = True


@ti.func
def _rot(theta: ti.f32) -> mat2:
    c, s = ti.cos(theta), ti.sin(theta)
    return mat2([[c, -s], [s, c]])


@ti.func
def _polar(F: mat2) -> mat2:
    return _rot(ti.atan2(F[1, 0] - F[0, 1], F[0, 0] + F[1, 1]))


@ti.func
def _svd(F: mat2):  # returns (U, σ, V)
    R = _polar(F)
    S = R.transpose() @ F
    a, b, d = S[0, 0], 0.5 * (S[0, 1] + S[1, 0]), S[1, 1]
    phi = 0.5 * ti.atan2(2.0 * b, a - d)
    c, s = ti.cos(phi), ti.sin(phi)
    sig = vec2(a * c * c + 2.0 * b * c * s + d * s * s, a * s * s - 2.0 * b * c * s + d * c * c)
    V = _rot(phi)
    return R @ V, sig, V


@ti.func
def _diag(u: vec2) -> mat2:
    return mat2([[u[0], 0.0], [0.0, u[1]]])


@ti.func
def _stress(F: mat2, J: ti.f32, kind: ti.template(), E: ti.f32, mu: ti.f32, lam: ti.f32) -> mat2:
    eye = ti.Matrix.identity(ti.f32, 2)
    tau = mat2(0.0)
    if ti.static(kind == 0):
        tau = E * (J - 1.0) * eye
    else:  # jelly; plastic kinds take their stress from the return map's SVD in the kernel
        det = F.determinant()
        tau = 2.0 * mu * (F - _polar(F)) @ F.transpose() + lam * det * (det - 1.0) * eye
    return tau


@ti.func
def _project(eps: vec2, kind: ti.template(), mu: ti.f32, lam: ti.f32, alpha: ti.f32, ystrain: ti.f32) -> vec2:
    tr = eps[0] + eps[1]
    dev = eps - 0.5 * tr
    norm = dev.norm()
    out = eps
    if ti.static(kind == 3):
        dgamma = norm - ystrain
        if dgamma > 0:
            out = eps - dgamma * dev / norm
    else:
        dgamma = norm + (2.0 * lam + 2.0 * mu) / (2.0 * mu) * tr * alpha
        if tr > 0:
            out = vec2(0.0)
        elif dgamma > 0 and norm > 0:
            out = eps - dgamma * dev / norm
    return out


def _make_substep(kind: int) -> Callable[..., None]:
    """The substep kernel of one material kind (a closure constant, so ti.graph can dispatch it)."""

    @ti.kernel
    def substep(
        x: ti.types.ndarray(dtype=vec2, ndim=1),
        v: ti.types.ndarray(dtype=vec2, ndim=1),
        C: ti.types.ndarray(dtype=mat2, ndim=1),
        F: ti.types.ndarray(dtype=mat2, ndim=1),
        J: ti.types.ndarray(dtype=ti.f32, ndim=1),
        tau: ti.types.ndarray(dtype=mat2, ndim=1),
        gv: ti.types.ndarray(dtype=vec2, ndim=2),
        gm: ti.types.ndarray(dtype=ti.f32, ndim=2),
        consts: ti.types.ndarray(dtype=ti.f32, ndim=1),
    ):
        # consts: dt, p_vol, p_mass, gravity, E, mu, lam, alpha, yield strain, wall cells
        dt, p_vol, p_mass, gravity = consts[0], consts[1], consts[2], consts[3]
        E, mu, lam, alpha, ystrain = consts[4], consts[5], consts[6], consts[7], consts[8]
        bound = ti.cast(consts[9], ti.i32)
        n_grid = gm.shape[0]
        inv_dx = ti.cast(n_grid, ti.f32)
        dx = 1.0 / inv_dx
        for i, j in ti.ndrange(n_grid, n_grid):
            gv[i, j] = vec2(0.0)
            gm[i, j] = 0.0
        ti.loop_config(serialize=True)  # deterministic summation order (see the module docstring)
        for p in range(x.shape[0]):
            xs = x[p] * inv_dx
            base = ti.cast(xs - 0.5, ti.i32)
            fx = xs - ti.cast(base, ti.f32)
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]
            affine = (-dt * 4.0 * inv_dx * inv_dx * p_vol) * tau[p] + p_mass * C[p]
            for i, j in ti.static(ti.ndrange(3, 3)):
                dpos = (vec2(i, j) - fx) * dx
                weight = w[i][0] * w[j][1]
                gv[base[0] + i, base[1] + j] += weight * (p_mass * v[p] + affine @ dpos)
                gm[base[0] + i, base[1] + j] += weight * p_mass
        for i, j in ti.ndrange(n_grid, n_grid):
            if gm[i, j] > 0:
                g = gv[i, j] / gm[i, j]
                g[1] -= dt * gravity
                if i <= bound:
                    g[0] = ti.max(g[0], 0.0)
                if i >= n_grid - bound:
                    g[0] = ti.min(g[0], 0.0)
                if j <= bound:
                    g[1] = ti.max(g[1], 0.0)
                if j >= n_grid - bound:
                    g[1] = ti.min(g[1], 0.0)
                gv[i, j] = g
        for p in range(x.shape[0]):
            xs = x[p] * inv_dx
            base = ti.cast(xs - 0.5, ti.i32)
            fx = xs - ti.cast(base, ti.f32)
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]
            new_v = vec2(0.0)
            new_C = mat2(0.0)
            for i, j in ti.static(ti.ndrange(3, 3)):
                dpos = (vec2(i, j) - fx) * dx
                g = gv[base[0] + i, base[1] + j]
                weight = w[i][0] * w[j][1]
                new_v += weight * g
                new_C += (4.0 * inv_dx * inv_dx * weight) * g.outer_product(dpos)
            v[p], C[p] = new_v, new_C
            # safety clamp keeping the 3×3 stencil on the grid; inactive while the walls hold (tested)
            x[p] = ti.math.clamp(x[p] + dt * new_v, dx, 1.0 - 2.0 * dx)
            J[p] *= 1.0 + dt * (new_C[0, 0] + new_C[1, 1])
            Fp = (ti.Matrix.identity(ti.f32, 2) + dt * new_C) @ F[p]
            if ti.static(kind >= 2):
                U, sig, V = _svd(Fp)
                eps = _project(ti.log(ti.max(sig, MIN_SINGULAR)), kind, mu, lam, alpha, ystrain)
                Fp = U @ _diag(ti.exp(eps)) @ V.transpose()
                tau[p] = U @ _diag(2.0 * mu * eps + lam * (eps[0] + eps[1])) @ U.transpose()
            else:
                tau[p] = _stress(Fp, J[p], kind, E, mu, lam)
            F[p] = Fp

    return substep


_KERNELS: dict[int, Callable[..., None]] = {}
_GRAPHS: dict[int, Any] = {}  # compiled ti.graph objects
GRAPH_SUBSTEPS = 25  # substeps per ti.graph launch: one Python call per saved frame
_ARGS = (("x", "v2", 1), ("v", "v2", 1), ("C", "m2", 1), ("F", "m2", 1), ("J", "f", 1), ("tau", "m2", 1))
_ARGS += (("gv", "v2", 2), ("gm", "f", 2), ("consts", "f", 1))


def _kernel(kind: int) -> Callable[..., None]:
    if kind not in _KERNELS:
        _KERNELS[kind] = _make_substep(kind)
    return _KERNELS[kind]


def _graph(kind: int) -> Any:
    """GRAPH_SUBSTEPS substeps in one launch: a plain kernel launch with nine ndarray arguments costs ~1 ms of
    Python, more than the substep itself at N = 4096."""
    if kind not in _GRAPHS:
        types = {"v2": vec2, "m2": mat2, "f": ti.f32}
        args = [ti.graph.Arg(ti.graph.ArgKind.NDARRAY, n, dtype=types[t], ndim=d) for n, t, d in _ARGS]
        builder = ti.graph.GraphBuilder()
        for _ in range(GRAPH_SUBSTEPS):
            builder.dispatch(_kernel(kind), *args)
        _GRAPHS[kind] = builder.compile()
    return _GRAPHS[kind]


class TaichiMPM:
    """The taichi solver (see `sparsenets.sim.trajectory.Solver`); state lives in taichi ndarrays."""

    def __init__(self, scene: Scene, mat: Material, setup: GridSetup) -> None:
        init_taichi()
        self.mat, self.setup = mat, setup
        n, g = scene.n_particles, setup.grid
        self.x, self.v = ti.ndarray(vec2, n), ti.ndarray(vec2, n)
        self.C, self.F = ti.ndarray(mat2, n), ti.ndarray(mat2, n)
        self.J = ti.ndarray(ti.f32, n)
        self.tau = ti.ndarray(
            mat2, n
        )  # Kirchhoff stress of the current state, written by G2P for the next P2G
        self.gv, self.gm = ti.ndarray(vec2, (g, g)), ti.ndarray(ti.f32, (g, g))
        self.x.from_numpy(scene.positions.astype(np.float32))
        self.v.from_numpy(scene.velocities.astype(np.float32))
        self.C.from_numpy(np.zeros((n, 2, 2), np.float32))
        self.F.from_numpy(np.tile(np.eye(2, dtype=np.float32), (n, 1, 1)))
        self.J.from_numpy(np.ones(n, np.float32))
        self.tau.from_numpy(np.zeros((n, 2, 2), np.float32))
        values = [setup.dt, setup.p_vol, setup.p_mass, setup.gravity, mat.E, mat.mu, mat.lam, mat.alpha]
        self.consts = ti.ndarray(ti.f32, 10)
        self.consts.from_numpy(np.array([*values, mat.yield_strain, setup.bound], dtype=np.float32))
        self._feed = {name: getattr(self, name) for name, _, _ in _ARGS}

    def substep(self, n: int = 1) -> None:
        """Advance `n` substeps (graph launches of GRAPH_SUBSTEPS, then single kernel launches)."""
        for _ in range(n // GRAPH_SUBSTEPS):
            _graph(self.mat.kind).run(self._feed)
        for _ in range(n % GRAPH_SUBSTEPS):
            _kernel(self.mat.kind)(*self._feed.values())

    def positions(self) -> np.ndarray:
        """Positions float32 [N, 2]."""
        return self.x.to_numpy()

    def velocities(self) -> np.ndarray:
        """Velocities float32 [N, 2]."""
        return self.v.to_numpy()

    def grid_mass(self) -> float:
        """Σ grid mass of the last P2G."""
        return float(self.gm.to_numpy().sum(dtype=np.float64))
