"""Masks hold in any PyTorch loop (PyTorch's own hooks, no Trainer), and mask files are checksummed."""

from __future__ import annotations

import copy
import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.masks import attach_masks, detach_masks, get_masks, load_masks, save_masks


def _setup(seed: int = 0) -> tuple[nn.Module, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    g = torch.Generator().manual_seed(seed + 1)
    masks = {n: torch.rand(p.shape, generator=g) > 0.6 for n, p in model.named_parameters() if p.dim() == 2}
    x = torch.randn(128, 10, generator=g)
    return model, masks, x, torch.randint(0, 4, (128,), generator=g)


def _pruned_nonzero(model: nn.Module, masks: dict[str, torch.Tensor]) -> int:
    params = dict(model.named_parameters())
    return sum(int((params[n].detach()[~m] != 0).sum()) for n, m in masks.items())


def test_plain_adamw_loop_keeps_pruned_weights_exactly_zero_for_1000_steps() -> None:
    """A user's own loop, no callback: AdamW with decoupled weight decay and momentum, checked right after
    optimizer steps (no forward in between)."""
    model, masks, x, y = _setup()
    attach_masks(model, masks)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.98))
    for step in range(1000):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step % 250 == 0:
            assert _pruned_nonzero(model, masks) == 0, step
    assert _pruned_nonzero(model, masks) == 0
    params = dict(model.named_parameters())
    for n, m in masks.items():
        assert bool((params[n].detach()[m] != before[n][m]).any())  # survivors trained
        assert isinstance(params[n], nn.Parameter)  # still a plain Parameter with its own name
    assert set(model.state_dict()) == {*before, *(f"{n}_mask" for n in masks)}
    detach_masks(model)  # the same loop without the masks revives them (the test can fail)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert _pruned_nonzero(model, masks) > 0


def test_stale_optimizer_state_never_reaches_an_output() -> None:
    """Masks attached after dense AdamW steps: momentum may move pruned weights, but every forward zeroes them
    first, so outputs are those of the masked weights."""
    model, masks, x, y = _setup(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(10):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    attach_masks(model, masks)
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        twin = copy.deepcopy(model)
        detach_masks(twin)
        with torch.no_grad():
            for n, p in twin.named_parameters():
                if n in masks:
                    p.mul_(masks[n])
            want = twin(x)
        torch.testing.assert_close(model(x), want, atol=0, rtol=0)
        assert _pruned_nonzero(model, masks) == 0  # the forward just zeroed them


def test_a_layer_used_twice_in_one_forward_still_backpropagates() -> None:
    """The pre-hook's write must not trip autograd's version check when a masked layer runs twice."""
    torch.manual_seed(2)
    lin = nn.Linear(6, 6)
    attach_masks(lin, {"weight": torch.rand(6, 6) > 0.5})
    x = torch.randn(4, 6)
    lin(lin(x)).sum().backward()
    assert int((lin.weight.grad[~lin.weight_mask] != 0).sum()) == 0
    assert int((lin.weight.grad[lin.weight_mask] != 0).sum()) > 0


def test_copies_and_pickled_models_keep_enforcing_their_masks() -> None:
    model, masks, x, y = _setup(3)
    attach_masks(model, masks)
    buf = io.BytesIO()
    torch.save(model, buf)
    restored = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    for clone in (copy.deepcopy(model), restored):
        opt = torch.optim.AdamW(clone.parameters(), lr=1e-2, weight_decay=0.1)
        for _ in range(30):
            opt.zero_grad()
            F.cross_entropy(clone(x), y).backward()
            opt.step()
        assert _pruned_nonzero(clone, masks) == 0
        assert set(get_masks(clone)) == set(masks)
    assert _pruned_nonzero(model, masks) == 0


def test_mask_files_are_checksummed(tmp_path) -> None:
    _, masks, _, _ = _setup()
    st = save_masks(tmp_path / "ticket.v1", masks, meta={"rate": 0.4})
    save_masks(tmp_path / "ticket.v2", {k: ~v for k, v in masks.items()})
    assert st.name == "ticket.v1.safetensors"  # ".v1" is part of the name: v2 did not overwrite it
    loaded, meta = load_masks(tmp_path / "ticket.v1")
    assert meta == {"rate": 0.4} and all(torch.equal(loaded[k], masks[k]) for k in masks)
    js = tmp_path / "ticket.v1.json"
    good_st, good_js = st.read_bytes(), js.read_text()
    blob = bytearray(good_st)
    blob[-3] ^= 0x01  # a flipped bit in the tensor data
    st.write_bytes(bytes(blob))
    with pytest.raises(SparsenetsError, match="fails its sha256"):
        load_masks(st)
    st.write_bytes(good_st)
    side = json.loads(good_js)
    side["meta"]["rate"] = 0.9  # an edited sidecar
    js.write_text(json.dumps(side))
    with pytest.raises(SparsenetsError, match="fails its checksum"):
        load_masks(st)
    side = json.loads(good_js)
    for key in ("tensors_sha256", "sidecar_sha256"):
        side.pop(key)
    js.write_text(json.dumps({**side, "format": "sparsenets-masks/1"}))
    with pytest.raises(SparsenetsError, match="no checksums"):
        load_masks(st)
    js.unlink()
    with pytest.raises(SparsenetsError, match="missing or unreadable"):
        load_masks(st)
    with pytest.raises(SparsenetsError, match="plain JSON"):
        save_masks(tmp_path / "bad", masks, meta={"x": object()})  # a meta that is not JSON
    assert not list(tmp_path.glob("bad*"))  # ... fails before any file is written


def test_a_mask_that_no_longer_fits_its_layer_is_one_clear_error() -> None:
    lin = nn.Linear(4, 4)
    attach_masks(lin, {"weight": torch.ones(4, 4, dtype=torch.bool)})
    lin.weight = nn.Parameter(torch.zeros(2, 4))  # resized by hand after the masks were attached
    with pytest.raises(SparsenetsError, match="no longer fits"):
        lin(torch.randn(1, 4))
