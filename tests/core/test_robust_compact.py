"""Compacted models: rebuilt only from an allow-list, checksummed, saved atomically under distinct names, and
`compact` refuses a group layout that does not fit the model instead of returning a broken one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import sparsenets.compact as sc
from sparsenets.compact import compact, compact_paths, load_compact, register_architecture, save_compact
from sparsenets.errors import SparsenetsError
from sparsenets.files import sha256_file, sha256_json
from sparsenets.groups import coupled_layouts
from sparsenets.masks import attach_masks
from sparsenets.models.cnn import LeNet5


class UserNet(nn.Module):
    """A user's own model: no `build_kwargs`, default arguments."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, hidden), nn.Linear(hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class Gated(nn.Module):
    """`b(a(x) * x)`: a's output channels are tied to the input's, which no group layout records."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(8, 8), nn.Linear(8, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.b(self.a(x) * x))


class SplitSum(nn.Module):
    """a's channels split by chunk and summed: removing channel 0 shifts the halves (wrong outputs, no crash)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.a(x).chunk(2, dim=1)
        return self.head(self.b(u + v).mean((2, 3)))


class ChunkCat(nn.Module):
    """a's halves swapped by chunk + cat: the layout lookup itself fails (IndexError inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 4, 1), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.a(x).chunk(2, 1)
        return self.head(self.b(torch.cat([v, u], 1)).mean((2, 3)))


def _zero_group(model: nn.Module, x: torch.Tensor, layer: str, j: int) -> None:
    """Zero output channel j of `layer` with every slice its coupled group layout lists (as training would)."""
    lay = next(lay for lay in coupled_layouts(model, x) if lay.name == layer)
    c = torch.ones(lay.m)
    c[j] = 0
    with torch.no_grad():
        lay.scale_(c)


def _rewrite(js: Path, **changes: object) -> None:
    """Edit a description and re-seal its checksum, as an attacker who knows the format would."""
    spec = json.loads(js.read_text())
    spec.pop("sidecar_sha256")
    spec.update(changes)
    spec["sidecar_sha256"] = sha256_json(spec)
    js.write_text(json.dumps(spec))


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        ("sparsenets.data.sources:_run", {"cmd": ["touch", "MARKER"], "cwd": "."}),
        ("os:system", {"command": "touch MARKER"}),
        ("subprocess:run", {"args": ["touch", "MARKER"]}),
        ("sparsenets.models.cnn:LeNet5:extra", {}),
        (["os", "system"], {}),
    ],
)
def test_a_crafted_description_runs_nothing(tmp_path, builder, kwargs) -> None:
    marker = tmp_path / "MARKER"
    kwargs = json.loads(json.dumps(kwargs).replace("MARKER", str(marker)))
    save_compact(LeNet5(width=0.25), tmp_path / "m")
    _rewrite(
        tmp_path / "m.json", builder=builder, kwargs=kwargs
    )  # valid checksums: only the allow-list is left
    with pytest.raises(SparsenetsError, match="not allowed") as err:
        load_compact(tmp_path / "m")
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_a_users_own_class_saves_and_loads_only_after_registration(tmp_path) -> None:
    torch.manual_seed(0)
    model = UserNet(hidden=24).eval()
    _zero_group(model, torch.randn(1, 8), "fc1", 3)
    small = compact(model, torch.randn(1, 8))
    assert small.fc1.out_features == 23
    save_compact(small, tmp_path / "user")  # refused before: no build_kwargs
    with pytest.raises(SparsenetsError, match=r"register_architecture"):
        load_compact(tmp_path / "user")
    x = torch.randn(5, 8)
    by_builder = load_compact(tmp_path / "user", builder=UserNet)
    torch.testing.assert_close(by_builder(x), small(x), atol=0, rtol=0)
    name = register_architecture(UserNet)
    try:
        again = load_compact(tmp_path / "user")
        assert type(again) is UserNet and again.fc1.out_features == 23
        torch.testing.assert_close(again(x), small(x), atol=0, rtol=0)
        with pytest.raises(SparsenetsError, match="already taken"):
            register_architecture(lambda: UserNet(), name=name)
        with pytest.raises(SparsenetsError, match="already taken"):
            register_architecture(UserNet, name="sparsenets.models.cnn:LeNet5")
    finally:
        sc.unregister_architecture(name)


def test_versioned_names_do_not_collide_and_a_failed_save_writes_nothing(tmp_path) -> None:
    one, two = LeNet5(width=0.25), LeNet5(width=0.5)
    save_compact(one, tmp_path / "lenet.v1")
    save_compact(two, tmp_path / "lenet.v2")
    assert compact_paths(tmp_path / "lenet.v1")[0].name == "lenet.v1.safetensors"
    assert load_compact(tmp_path / "lenet.v1")[0].out_channels == one[0].out_channels
    assert load_compact(tmp_path / "lenet.v2")[0].out_channels == two[0].out_channels
    assert load_compact(tmp_path / "lenet.v2.json")[0].out_channels == two[0].out_channels

    class NeedsArgs(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.fc = nn.Linear(2, width)

    with pytest.raises(SparsenetsError, match="kwargs"):
        save_compact(NeedsArgs(3), tmp_path / "partial")
    with pytest.raises(SparsenetsError, match="plain JSON"):
        save_compact(NeedsArgs(3), tmp_path / "partial", kwargs={"width": object()})
    assert not list(tmp_path.glob("*partial*"))  # nothing written, not even a temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lenet.v1.json",
        "lenet.v1.safetensors",
        "lenet.v2.json",
        "lenet.v2.safetensors",
    ]


def test_damaged_or_legacy_files_are_one_clear_error(tmp_path) -> None:
    save_compact(LeNet5(width=0.25), tmp_path / "m")
    st, js = compact_paths(tmp_path / "m")
    good_st, good_js = st.read_bytes(), js.read_text()
    spec = json.loads(good_js)
    assert spec["tensors_sha256"] == sha256_file(st)
    cases = {
        "fails its sha256": lambda: st.write_bytes(good_st[:-1] + bytes([good_st[-1] ^ 0x10])),
        "fails its sha256 ": lambda: st.write_bytes(good_st[: len(good_st) // 2]),
        "fails its checksum": lambda: js.write_text(good_js.replace('"width": 0.25', '"width": 0.5')),
        "cannot read the structure": lambda: js.write_text(good_js[:-5]),
        "no checksums": lambda: js.write_text(
            json.dumps({k: spec[k] for k in ("builder", "kwargs", "sizes")})
        ),
    }
    for message, damage in cases.items():
        st.write_bytes(good_st), js.write_text(good_js)
        damage()
        with pytest.raises(SparsenetsError, match=message.strip()) as err:
            load_compact(tmp_path / "m")
        assert "\n" not in str(err.value)
    st.write_bytes(good_st)
    for bad in ({"0": {"in_channels": 10**12, "out_channels": 3}}, {"nope": {"in_features": 3}}):
        js.write_text(good_js)
        _rewrite(js, sizes=bad)
        with pytest.raises(SparsenetsError, match=r"bad sizes|no layer"):
            load_compact(tmp_path / "m")


def test_compact_refuses_a_layout_that_changes_or_breaks_the_outputs() -> None:
    torch.manual_seed(0)
    gated, x = Gated().eval(), torch.randn(1, 8)
    _zero_group(gated, x, "a", 0)
    with pytest.raises(SparsenetsError, match=r"fails on the example input .* layer 'a'"):
        compact(gated, x)
    small = compact(gated, x, ignored_layers=["a", "head"])  # the hint in the message works
    torch.testing.assert_close(small(x), gated(x))
    split, img = SplitSum().eval(), torch.randn(1, 3, 6, 6)
    _zero_group(split, img, "a", 0)
    with pytest.raises(SparsenetsError, match=r"outputs differ .* layer 'a'"):
        compact(split, img)
    # the layout lookup on its own, then inside compact
    with pytest.raises(SparsenetsError, match=r"cannot group the channels of 'a'"):
        coupled_layouts(ChunkCat(), img)
    with pytest.raises(SparsenetsError, match=r"coupled channel groups of layer 'a'"):
        compact(ChunkCat().eval(), img)


def test_compact_still_passes_a_fitting_model_and_drops_attached_masks() -> None:
    torch.manual_seed(1)
    model = UserNet().eval()
    attach_masks(model, {"fc1.weight": torch.ones(16, 8, dtype=torch.bool)})
    x = torch.randn(4, 8)
    _zero_group(model, x[:1], "fc1", 5)
    small = compact(model, x[:1])
    assert small.fc1.out_features == 15 and not hasattr(small.fc1, "weight_mask")
    torch.testing.assert_close(small(x), model(x), atol=1e-6, rtol=0)
