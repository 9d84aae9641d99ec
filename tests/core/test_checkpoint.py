"""Checkpoints: exact round trips, atomic replacement, corruption detected with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsenets.errors import CheckpointError
from sparsenets.train.checkpoint import (
    join_tensors,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    split_tensors,
)


def _state() -> dict:
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "np": np.random.get_state(),
        "tuple": (1, 2.5, "x"),
        "int_keys": {0: torch.ones(2), 3: None},
        "step": 7,
    }


def test_split_join_roundtrip_is_exact() -> None:
    state = _state()
    tensors: dict[str, torch.Tensor] = {}
    back = join_tensors(split_tensors(state, "s", tensors), tensors)
    assert torch.equal(back["model"]["weight"], state["model"]["weight"])
    assert back["optimizer"]["state"][0]["exp_avg"].equal(state["optimizer"]["state"][0]["exp_avg"])
    assert back["tuple"] == (1, 2.5, "x")
    assert back["int_keys"][3] is None and torch.equal(back["int_keys"][0], torch.ones(2))
    assert np.array_equal(back["np"][1], state["np"][1])
    assert torch.equal(back["rng"], state["rng"])


def test_save_load_and_keep_last_two(tmp_path) -> None:
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, _state() | {"step": step})
    assert latest_checkpoint(tmp_path).name == "ckpt-000000030.json"
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["ckpt-000000020.json", "ckpt-000000030.json"]
    step, state = load_checkpoint(latest_checkpoint(tmp_path))
    assert step == 30 and state["step"] == 30
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_tensor_file_is_detected(tmp_path) -> None:
    sidecar = save_checkpoint(tmp_path, 5, _state())
    st = tmp_path / "ckpt-000000005.safetensors"
    st.write_bytes(st.read_bytes()[:-16])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(sidecar)
    assert st.exists(), "a corrupt checkpoint is reported, never deleted"


def test_garbled_sidecar_is_detected(tmp_path) -> None:
    sidecar = save_checkpoint(tmp_path, 5, _state())
    sidecar.write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(sidecar)
