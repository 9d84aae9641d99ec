"""`RunContext`: what a run function gets besides its config (folder, seed, device, artefact writers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sparsenets.files import atomic_write_bytes
from sparsenets.train import dist


@dataclass
class RunContext:
    """What an experiment's run function gets besides its config.

    Attributes:
        dir: the run folder (exists); write artefacts here.
        seed: the base seed (experiments with several seeds use seed, seed+1, ...).
        quick: True for a reduced smoke-test size.
        device: CUDA when present, else CPU.
    """

    dir: Path
    seed: int
    quick: bool
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints (rank 0)."""
        return dist.current().is_main

    def subdir(self, name: str) -> Path:
        """A sub-folder of the run folder (for one seed or one method), created on rank 0."""
        path = self.dir / name
        if self.is_main:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, message: str) -> None:
        """Print one progress line (rank 0 only)."""
        if self.is_main:
            print(message, flush=True)

    def save_json(self, name: str, obj: Any) -> None:
        """Write `obj` as JSON into the run folder atomically (rank 0 only)."""
        if self.is_main:
            atomic_write_bytes(self.dir / name, json.dumps(obj, indent=2, default=str).encode())

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as figures/NAME.png (the report embeds every figure) and close it."""
        import matplotlib.pyplot as plt

        path = self.dir / "figures" / f"{name}.png"
        if self.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path

    def write_report(self, markdown: str) -> None:
        """Markdown (tables, the paper's claim next to ours) that the report shows for this run."""
        if self.is_main:
            atomic_write_bytes(self.dir / "report.md", markdown.encode())
