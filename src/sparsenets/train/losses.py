"""Training losses: knowledge distillation from a dense teacher (the loss, and the teacher's logits once)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import ConfigError


def check_distill(alpha: float, temperature: float) -> None:
    """Raise a ConfigError unless 0 <= `alpha` <= 1 and `temperature` is a finite number > 0."""
    if not 0.0 <= alpha <= 1.0:  # NaN fails this too
        raise ConfigError(f"distill must be a weight in [0, 1] (0 turns distillation off); got {alpha}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"distill_temperature must be a finite number > 0 (4 is usual); got {temperature}")


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Hinton-style distillation: (1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).

    The T² factor keeps the soft term's gradient on the scale of the hard one as T changes.

    Args:
        student: (B, C) the trained model's logits.
        teacher: (B, C) the teacher's logits (no gradient flows into them).
        labels: (B,) integer class labels.
        alpha: weight of the soft term in [0, 1]; 0 is plain cross-entropy.
        temperature: T > 0, the softening of both distributions.

    Returns:
        () the mean loss over the batch.
    """
    check_distill(alpha, temperature)
    hard = F.cross_entropy(student, labels)
    if alpha == 0.0:
        return hard
    log_p = F.log_softmax(student / temperature, dim=-1)
    log_q = F.log_softmax(teacher.detach() / temperature, dim=-1)
    soft = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * temperature**2
    return (1.0 - alpha) * hard + alpha * soft


def teacher_logits(
    teacher: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    autocast: torch.dtype | None = None,
    batch_size: int = 512,
) -> torch.Tensor:
    """The fixed teacher's logits for every training image, computed once for a whole fine-tune.

    The batches carry no augmentation, so an image's teacher output is the same at every step: one pass here
    replaces a teacher forward per step (at full-width VGG that forward cost as much as the compacted student's
    training step). Eval mode (running BatchNorm statistics) under the training's autocast.

    Args:
        teacher: the finished dense model.
        images: (N, C, H, W) the training images.
        device: where the teacher runs.
        autocast: the training's autocast dtype (None: float32), so the teacher runs as the student trains.
        batch_size: images per teacher forward.

    Returns:
        (N, classes) float32 logits on the CPU.
    """
    dtype = autocast
    if batch_size < 1:
        raise ConfigError(f"teacher_logits: batch_size must be >= 1; got {batch_size}")
    teacher = teacher.to(device).eval()
    out = []
    with (
        torch.no_grad(),
        torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None),
    ):
        for i in range(0, images.shape[0], batch_size):
            out.append(teacher(images[i : i + batch_size].to(device)).float().cpu())
    return torch.cat(out)
