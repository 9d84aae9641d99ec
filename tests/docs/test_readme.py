"""Every Python block of the README runs as written (each in a fresh namespace), so the examples cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_a_block_per_method() -> None:
    text = "\n".join(BLOCKS)
    for method in ("sparsenets.wgsef", "sparsenets.tickets", "sparsenets.spectral", "sparsenets.sdr"):
        assert method in text, f"no README block uses {method}"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int) -> None:
    torch.manual_seed(0)
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
