"""Shared pieces of the WGSEF study tests: run the quick LeNet study, or run it killed at one call."""

from __future__ import annotations

import json

import pytest

from sparsenets import runs


def first_seed(out, sets: list[str]) -> dict:
    """per_seed.json's first row after a quick LeNet study into `out`."""
    run_dir, _ = runs.execute("wgsef-lenet5-mnist", quick=True, out=out, sets=sets)
    return json.loads((run_dir / "per_seed.json").read_text())[0]


def run_killed(out, sets: list[str], monkeypatch, owner: object, name: str, replacement) -> None:
    """A quick LeNet study into `out` with `owner.name` patched to raise KeyboardInterrupt somewhere."""
    monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(KeyboardInterrupt):
        runs.execute("wgsef-lenet5-mnist", quick=True, out=out, sets=sets)
    monkeypatch.undo()
