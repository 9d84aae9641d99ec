"""The compression record: what every compression method produces for the comparison, one per compressed model."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sparsenets.errors import SparsenetsError


@dataclass
class CompressionRecord:
    """One compressed model, measured the same way whatever the method.

    Latencies are median seconds of one CPU forward pass of a batch (1 or 64), dense and compacted timed
    interleaved in the same process; `speedup_b64` = dense / compacted. Unstructured methods (masks only) are not
    compacted: their params count the nonzero weights, their FLOPs and latency are the dense model's (no claim).
    """

    method: str
    model: str
    dataset: str
    seed: int
    keep: float  # the budget: keep ratio of groups per prunable layer (unstructured: weights kept = keep²)
    structured: bool
    accuracy_dense: float
    accuracy_before_finetune: float  # right after the exact selection (or the adapter's own end)
    accuracy: float  # after fine-tuning (the result)
    params_dense: float
    params: float
    flops_dense: float
    flops: float
    latency_b1_dense: float
    latency_b1: float
    latency_b64_dense: float
    latency_b64: float
    budgeted: list[int]  # groups per prunable layer the budget asks for (unstructured: [weights kept])
    kept: list[int]  # groups per prunable layer of the result (unstructured: [unmasked weights])
    max_abs_diff: float  # |compacted − masked| outputs after the selection (0 when nothing was compacted)
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flops_reduction(self) -> float:
        """Dense FLOPs / compressed FLOPs."""
        return self.flops_dense / self.flops

    @property
    def params_reduction(self) -> float:
        """Dense params / compressed params."""
        return self.params_dense / self.params

    @property
    def speedup_b64(self) -> float:
        """Measured batch-64 CPU latency, dense / compressed."""
        return self.latency_b64_dense / self.latency_b64

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the derived ratios included."""
        out = dataclasses.asdict(self)
        out.update(
            flops_reduction=self.flops_reduction,
            params_reduction=self.params_reduction,
            speedup_b64=self.speedup_b64,
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionRecord:
        """The record a `to_dict` wrote (derived ratios ignored); one clear error if fields are missing."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(n for n in names - data.keys() if n != "extra")
        if missing:
            raise SparsenetsError(f"compression record lacks {missing}; delete the file to recompute it")
        return cls(**{k: v for k, v in data.items() if k in names})

    def check(self) -> None:
        """Raise unless the record is complete and sane: finite measurements, exactly the budgeted counts kept."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise SparsenetsError(f"record {self.method}/{self.model}: {f.name} is {v}")
        if self.params <= 0 or self.flops <= 0 or self.latency_b1 <= 0 or self.latency_b64 <= 0:
            raise SparsenetsError(f"record {self.method}/{self.model}: a size or latency is not positive")
        if self.kept != self.budgeted:
            raise SparsenetsError(
                f"{self.method} kept {self.kept} groups per layer but the budget asks for {self.budgeted}"
            )
