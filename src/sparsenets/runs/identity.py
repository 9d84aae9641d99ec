"""What identifies a run (a hash of experiment, config and seed) and what produced it (versions, commit)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


def config_hash(name: str, config: Any, seed: int) -> str:
    """Eight hex digits that identify (experiment, config, seed)."""
    blob = json.dumps(
        {"experiment": name, "config": dataclasses.asdict(config), "seed": seed}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def versions() -> dict[str, str | None]:
    """Versions of python, torch, numpy, sparsenets and the git commit of the source tree (None outside git)."""
    import numpy

    import sparsenets

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sparsenets": sparsenets.__version__,
        "git_commit": commit,
    }
