"""The generated MPM data sets: shapes, disjoint splits, nested sparse ids, statistics against a brute-force
recomputation, the cache stamp, the registry wiring and the GNS round trip."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sparsenets.data as data
from sparsenets.data import mpm
from sparsenets.data.registry import _names
from sparsenets.errors import DataNotFoundError, SparsenetsError
from sparsenets.sim import read_gns_metadata, read_gns_split, write_gns_metadata, write_gns_split
from sparsenets.sim.gns_io import GnsTrajectory

TINY = {"n_particles": 96, "frames": 9, "n_train": 2, "n_val": 1, "n_test": 1, "seed": 3}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private data cache holding one tiny generated water set (simulated once for the module)."""
    root = tmp_path_factory.mktemp("mpm-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARSENETS_DATA", str(root))
        lines: list[str] = []
        mpm.generate("water", log=lines.append, **TINY)
        assert any("generated mpm-water2d" in line for line in lines)
    return root


@pytest.fixture
def in_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPARSENETS_DATA", str(cache))
    return cache


def _splits() -> dict[str, mpm.ParticleSet]:
    return {s: data.load("mpm-water2d", split=s, **TINY) for s in mpm.SPLITS}


def test_splits_have_the_documented_shapes_and_dtypes(in_cache: Path) -> None:
    sets = _splits()
    for split, n in zip(mpm.SPLITS, (2, 1, 1)):
        ds = sets[split]
        assert ds.positions.shape == (n, 9, 96, 2) and str(ds.positions.dtype) == "torch.float32"
        assert ds.types.shape == (n, 96) and str(ds.types.dtype) == "torch.int64"
        assert (ds.types == 5).all()
        assert ds.reference.equal(ds.positions[:, 0])
        for ids in (ds.random_ids, ds.fps_ids):
            assert ids.shape == (n, 96) and str(ids.dtype) == "torch.int64"
            assert (ids.sort(-1).values == np.arange(96)).all()  # a permutation per trajectory
        lo, hi = ds.metadata["bounds"][0]
        assert ds.positions.min() > lo - 1 / 64 and ds.positions.max() < hi + 1 / 64


def test_splits_are_disjoint_trajectories(in_cache: Path) -> None:
    firsts = [traj[0].numpy() for ds in _splits().values() for traj in ds.positions]
    for i in range(len(firsts)):
        for j in range(i):
            assert not np.array_equal(firsts[i], firsts[j])


def test_metadata_stats_match_a_brute_force_recomputation(in_cache: Path) -> None:
    sets = _splits()
    pos = sets["train"].positions.double().numpy()
    vel = pos[:, 1:] - pos[:, :-1]
    acc = vel[:, 1:] - vel[:, :-1]
    meta = sets["train"].metadata
    assert np.allclose(meta["vel_mean"], vel.reshape(-1, 2).mean(0), rtol=1e-6, atol=1e-12)
    assert np.allclose(meta["vel_std"], vel.reshape(-1, 2).std(0), rtol=1e-6)
    assert np.allclose(meta["acc_mean"], acc.reshape(-1, 2).mean(0), rtol=1e-6, atol=1e-12)
    assert np.allclose(meta["acc_std"], acc.reshape(-1, 2).std(0), rtol=1e-6)
    assert sets["val"].metadata == meta == sets["test"].metadata  # every split sees the training statistics
    assert meta["dim"] == 2 and meta["N"] == 96 and meta["T"] == 9 and meta["dt"] == pytest.approx(5e-3)
    assert meta["radius"] == pytest.approx(mpm.RADIUS_PER_SPACING * meta["mean_spacing"])


def test_radius_gives_about_twenty_neighbours_at_the_start(in_cache: Path) -> None:
    ds = _splits()["train"]
    x = ds.reference[0].double()
    degree = ((x[:, None] - x[None]).norm(dim=-1) < ds.metadata["radius"]).sum(1).double().mean()
    assert 12 < degree < 36  # π·2.75² ≈ 24 at uniform density; the block's edges have fewer


def _greedy_fps(x: np.ndarray, first: int, m: int) -> list[int]:
    chosen = [first]
    while len(chosen) < m:  # O(N·M²) brute force: the point whose nearest chosen point is farthest
        d = np.array([min(np.sum((p - x[c]) ** 2) for c in chosen) for p in x])
        d[chosen] = -1
        chosen.append(int(np.argmax(d)))
    return chosen


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 30), st.just(2)), elements=st.floats(0, 1)))
def test_fps_order_prefixes_are_the_greedy_farthest_point_subsets(x: np.ndarray) -> None:
    order = mpm.farthest_point_order(x)
    assert sorted(order.tolist()) == list(range(len(x)))
    first = int(np.argmin(((x - x.mean(0)) ** 2).sum(-1)))
    assert order.tolist()[: min(6, len(x))] == _greedy_fps(x, first, min(6, len(x)))


def test_generated_ids_are_fps_of_the_reference(in_cache: Path) -> None:
    ds = _splits()["val"]
    assert ds.fps_ids[0].tolist() == mpm.farthest_point_order(ds.reference[0].numpy()).tolist()
    assert not ds.random_ids[0].equal(ds.fps_ids[0])


def test_second_generate_reuses_the_cache(in_cache: Path) -> None:
    lines: list[str] = []
    mpm.generate("water", log=lines.append, **TINY)
    assert lines and lines[0].startswith("ok mpm-water2d")


def test_a_damaged_cache_file_fails_its_stamp(
    in_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = mpm.MPMParams("water", **TINY).folder()
    copy = tmp_path / "arrays" / folder.name
    copy.mkdir(parents=True)
    for f in folder.iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path))
    blob = bytearray(copy.joinpath("fps_ids_test.npy").read_bytes())
    blob[-1] ^= 1
    copy.joinpath("fps_ids_test.npy").write_bytes(bytes(blob))
    data.load("mpm-water2d", split="val", **TINY)  # the other splits' files are not read, so still load
    with pytest.raises(SparsenetsError, match="fails its sha256"):
        data.load("mpm-water2d", split="test", **TINY)


def test_missing_set_names_the_command_with_its_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=re.escape("run: sparsenets data install mpm-sand2d") + "$"):
        data.load("mpm-sand2d")
    with pytest.raises(
        DataNotFoundError,
        match=re.escape("run: python -m sparsenets.data.mpm jelly --n-particles 16384") + "$",
    ):
        data.load("mpm-jelly2d", n_particles=16384)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_particles": 10}, "needs n_particles >= 64 and frames >= 8"),
        ({"frames": 3}, "needs n_particles >= 64 and frames >= 8"),
        ({"n_val": 0}, "at least one trajectory in each"),
        ({"substeps": 0}, "needs substeps >= 1 per frame"),
    ],
)
def test_bad_params_are_one_clear_error(params: dict, message: str) -> None:
    with pytest.raises(SparsenetsError, match=message):
        data.load("mpm-water2d", **params)


def test_unknown_material_and_split_are_one_clear_error() -> None:
    with pytest.raises(SparsenetsError, match="unknown MPM material 'honey'"):
        mpm.MPMParams("honey")
    with pytest.raises(SparsenetsError, match="has splits train, val, test"):
        data.load("mpm-water2d", split="valid")


def test_frame_rate_is_per_material_and_part_of_the_cache_key() -> None:
    water, jelly = mpm.MPMParams("water"), mpm.MPMParams("jelly")
    assert (water.substeps, jelly.substeps) == (25, 10)  # jelly's elastic ringing needs finer frames
    assert jelly.command() == "sparsenets data install mpm-jelly2d"  # its own frame rate is the default
    coarse = mpm.MPMParams("jelly", substeps=25)
    assert coarse.command() == "python -m sparsenets.data.mpm jelly --substeps 25"
    assert len({jelly.folder(), coarse.folder()}) == 2  # another frame rate never reads a cached set
    assert water.folder().name == "mpm-water2d-4096p-160f-24-4-4-s0-v1"  # the first sets keep their names


def test_generated_frames_are_substeps_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsenets.sim import random_scene, simulate

    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path))
    tiny = {**TINY, "frames": 8, "n_train": 1, "substeps": 4}
    mpm.generate("jelly", log=lambda _: None, engine="numpy", **tiny)
    ds = data.load("mpm-jelly2d", "train", **tiny)
    assert ds.metadata["dt"] == pytest.approx(4 * mpm.DT) and ds.metadata["substeps"] == 4
    scene = random_scene(mpm._scene_seed(TINY["seed"], 0), TINY["n_particles"])
    want = simulate(scene, "jelly", 8, 4, mpm.DT, mpm.GRID, "numpy").positions
    np.testing.assert_array_equal(ds.positions[0].numpy(), want)


def test_generated_sets_are_registered_but_not_in_install_all() -> None:
    names = [f"mpm-{m}2d" for m in mpm.MATERIALS]
    assert all(n in data.REGISTRY for n in names)
    assert not set(names) & set(_names("all"))
    assert _names(["mpm-water2d"]) == ["mpm-water2d"]


def test_module_cli_generates_and_reports_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path))
    assert mpm.main(["plasticine", "--n-particles", "5"]) == 2
    argv = ["sand", "--n-particles", "64", "--frames", "8", "--n-train", "1", "--n-val", "1", "--n-test", "1"]
    assert mpm.main([*argv, "--engine", "numpy"]) == 0
    ds = data.load("mpm-sand2d", "test", n_particles=64, frames=8, n_train=1, n_val=1, n_test=1)
    assert ds.positions.shape == (1, 8, 64, 2) and (ds.types == 6).all()


def test_gns_round_trip_of_a_generated_set(in_cache: Path, tmp_path: Path) -> None:
    mpm.export_gns("water", tmp_path, **TINY)
    for split, gns_name in zip(mpm.SPLITS, ("train", "valid", "test")):
        ds = data.load("mpm-water2d", split=split, **TINY)
        back = read_gns_split(tmp_path / f"{gns_name}.npz")
        assert len(back) == len(ds.positions)
        for traj, pos, types in zip(back, ds.positions, ds.types):
            assert np.array_equal(traj.positions, pos.numpy()) and np.array_equal(traj.types, types.numpy())
    # numpy's own reader (the GNS code path) sees the same layout
    raw = np.load(tmp_path / "train.npz", allow_pickle=True)
    train = data.load("mpm-water2d", split="train", **TINY)
    assert np.array_equal(raw["simulation_trajectory_1"][0], train.positions[1].numpy())
    meta = read_gns_metadata(tmp_path)
    assert meta["default_connectivity_radius"] == ds.metadata["radius"] and meta["sequence_length"] == 9
    assert meta["vel_std"] == ds.metadata["vel_std"] and meta["bounds"] == ds.metadata["bounds"]


def test_gns_writer_keeps_every_trajectory_in_member_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trajs = [GnsTrajectory(rng.random((3, 5 + i, 2), dtype=np.float32), np.full(5 + i, i)) for i in range(12)]
    write_gns_split(tmp_path / "x.npz", trajs)
    back = read_gns_split(tmp_path / "x.npz")  # _10 and _11 must come after _9
    assert [t.positions.shape[1] for t in back] == [5 + i for i in range(12)]
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(trajs, back))
    write_gns_metadata(tmp_path, {"bounds": [[0, 1], [0, 1]], "dim": 2})
    assert read_gns_metadata(tmp_path)["dim"] == 2


def _npz_with(member: np.ndarray, path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, member, allow_pickle=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("simulation_trajectory_0.npy", buf.getvalue())


def test_gns_reader_refuses_pickled_code_and_bad_layouts(tmp_path: Path) -> None:
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = np.zeros((2, 3, 2), np.float32), complex(1, 2)  # a non-numpy global in the pickle
    _npz_with(evil, tmp_path / "evil.npz")
    with pytest.raises(SparsenetsError, match=re.escape("refusing to unpickle builtins.complex")):
        read_gns_split(tmp_path / "evil.npz")
    bad = np.empty(2, dtype=object)
    bad[0], bad[1] = np.zeros((3, 2), np.float32), np.zeros(3, np.int64)
    _npz_with(bad, tmp_path / "bad.npz")
    with pytest.raises(SparsenetsError, match="are not float \\[T >= 1"):
        read_gns_split(tmp_path / "bad.npz")
    with pytest.raises(SparsenetsError, match="does not exist"):
        read_gns_split(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SparsenetsError, match=re.escape("is not an .npz archive")):
        read_gns_split(tmp_path / "junk.npz")
    (tmp_path / "metadata.json").write_text('{"dim": 2}')
    with pytest.raises(SparsenetsError, match="lacks 'bounds'"):
        read_gns_metadata(tmp_path)


_SHAPES = st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple)
_DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.bool_])


@settings(max_examples=60, deadline=None)
@given(pos_shape=_SHAPES, pos_dtype=_DTYPES, types_shape=_SHAPES, n_parts=st.integers(0, 3))
def test_gns_reader_gives_one_line_for_any_malformed_member(
    tmp_path_factory: pytest.TempPathFactory,
    pos_shape: tuple,
    pos_dtype: type,
    types_shape: tuple,
    n_parts: int,
) -> None:
    """Any (positions, particle_type) object member either reads as [T, N, d] float32 / [N] int64 or is refused
    with one SparsenetsError line naming the member: never a numpy traceback."""
    item = np.empty(n_parts, dtype=object)
    for i, (shape, dtype) in enumerate(
        [(pos_shape, pos_dtype), (types_shape, np.int64), ((1,), np.int64)][:n_parts]
    ):
        item[i] = np.zeros(shape, dtype)
    path = tmp_path_factory.mktemp("fuzz") / "f.npz"
    _npz_with(item, path)
    ok = n_parts >= 2 and len(pos_shape) == 3 and pos_dtype in (np.float32, np.float64)
    ok = ok and min(pos_shape[:2]) >= 1 and pos_shape[2] in (2, 3) and types_shape == (pos_shape[1],)
    if ok:
        (traj,) = read_gns_split(path)
        assert traj.positions.shape == pos_shape and traj.positions.dtype == np.float32
        assert traj.types.dtype == np.int64
        return
    with pytest.raises(SparsenetsError) as err:
        read_gns_split(path)
    assert "simulation_trajectory_0" in str(err.value) and "\n" not in str(err.value)
