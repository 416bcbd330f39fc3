"""Knowledge distillation (Hinton et al., 2015): a student trained on a frozen teacher's soft labels.

The loss is ``alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(p_teacher || p_student)``, both
distributions softened at temperature ``T``; the ``T^2`` factor keeps the soft term's gradients on
the scale of the hard term's as ``T`` changes. :func:`train.trainer.train_model` takes a
:class:`Teacher` and stores its identity and :class:`DistillConfig` in the student's checkpoints,
so a resume with another teacher or other settings is refused.

Reference:
    Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014 Deep
    Learning Workshop (arXiv:1503.02531).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from train.checkpoint import load_model_weights
from train.feature_set import Features


@dataclass(frozen=True)
class DistillConfig:
    """How the student learns from the teacher.

    Attributes:
        temperature: Softmax temperature of both the teacher's and the student's soft distributions (> 0).
        alpha: Weight of the hard-label cross-entropy in [0, 1]; the soft (KL) term gets ``1 - alpha``.
    """

    temperature: float = 4.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        temperature, alpha = self.temperature, self.alpha
        if not _is_number(temperature) or not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"distill.temperature must be > 0 and finite, got {temperature!r}")
        if not _is_number(alpha) or not 0 <= alpha <= 1:  # NaN fails the comparison, inf is outside
            raise ValueError(f"distill.alpha must be in [0, 1], got {alpha!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    alpha: float,
    label_smoothing: float = 0.0,
    targets_b: torch.Tensor | None = None,
    lam: float = 1.0,
) -> torch.Tensor:
    """The distillation loss of a batch, computed in float32 (also under autocast).

    ``alpha * CE + (1 - alpha) * T^2 * KL(p_teacher || p_student)``, the KL term averaged over the
    batch. With mixup (``targets_b`` given and ``lam < 1``) the CE term is
    ``lam * CE(targets) + (1 - lam) * CE(targets_b)``, and ``teacher_logits`` must be the teacher's
    logits on the same mixed inputs. At ``alpha == 1`` the result is the cross-entropy alone (the
    teacher is not read), at ``alpha == 0`` the soft term alone.

    Args:
        student_logits: (batch, n_classes) logits of the model being trained.
        teacher_logits: (batch, n_classes) logits of the teacher on the same inputs (no gradient).
        targets: (batch,) integer labels.
        temperature: Softmax temperature ``T`` > 0.
        alpha: Weight of the hard-label cross-entropy in [0, 1].
        label_smoothing: Label smoothing of the cross-entropy term.
        targets_b: The mixup partners' labels, or None without mixup.
        lam: The mixup weight of ``targets``.

    Returns:
        The scalar loss (float32).

    Raises:
        ValueError: The logits' shapes differ, or ``temperature``/``alpha`` are out of range.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ"
        )
    DistillConfig(temperature, alpha)  # validates both
    with torch.autocast(student_logits.device.type, enabled=False):
        student = student_logits.float()
        if alpha == 1:
            return _hard_loss(student, targets, label_smoothing, targets_b, lam)
        soft = soft_loss(student, teacher_logits.float(), temperature)
        if alpha == 0:
            return soft
        return alpha * _hard_loss(student, targets, label_smoothing, targets_b, lam) + (1 - alpha) * soft


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(p_teacher || p_student)`` with both softmaxes at temperature ``T``, averaged over the batch."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return temperature**2 * kl


def _hard_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float, targets_b: torch.Tensor | None, lam: float
) -> torch.Tensor:
    """Cross-entropy, mixed as the trainer mixes it when mixup is on."""
    loss = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    if targets_b is not None and lam < 1.0:
        loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, targets_b, label_smoothing=label_smoothing)
    return loss


@dataclass
class Teacher:
    """A trained, frozen classifier whose soft labels a student learns from.

    On creation the model is put in eval mode with ``requires_grad_(False)``; the trainer moves it
    to the training device and keeps it so (it never enters train mode).

    Attributes:
        model: The teacher network, taking the same (batch, 1, n_bins, n_frames) inputs as the student.
        config: Temperature and loss weight.
        identity: Names the teacher (e.g. its spec string and a hash of its weights, see
            :func:`teacher_identity`); stored in the student's checkpoints and compared on resume.
        classes: The class names the teacher predicts, in its output order.
        input_shape: The input shape of one example, e.g. (1, n_bins, n_frames).
    """

    model: nn.Module
    config: DistillConfig
    identity: str
    classes: list[str]
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("Teacher.identity must name the teacher (e.g. teacher_identity(spec, model)), got ''")
        self.classes = list(self.classes)
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.freeze()

    def freeze(self) -> None:
        """Put the model in eval mode and switch its parameters' gradients off."""
        self.model.eval()
        self.model.requires_grad_(False)

    def check_compatible(self, features: Features) -> None:
        """Check the teacher predicts the student's classes, in order, from inputs of the same shape.

        Raises:
            UserError: The class lists or the input shapes differ (both are named).
        """
        classes, shape = list(features.classes), tuple(features.input_shape)
        if self.classes != classes:
            raise UserError(
                f"teacher '{self.identity}' predicts classes {_preview(self.classes)}, but the student's features "
                f"have classes {_preview(classes)} ({_first_difference(self.classes, classes)}); "
                "distil from a teacher trained on the same dataset and labels"
            )
        if self.input_shape != shape:
            raise UserError(
                f"teacher '{self.identity}' takes inputs of shape {self.input_shape}, but the student's features "
                f"have shape {shape}; distil from a teacher trained on the same feature settings"
            )

    def checkpoint_info(self) -> dict[str, Any]:
        """What the student's checkpoints record of the teacher: its identity and the distillation settings."""
        return {"teacher": self.identity, **dataclasses.asdict(self.config)}

    @classmethod
    def from_checkpoint(
        cls, model: nn.Module, path: str | os.PathLike, config: DistillConfig | None = None, spec: str | None = None
    ) -> Teacher:
        """A teacher from a training checkpoint (e.g. a baseline's ``best.pt``).

        Args:
            model: A freshly built network of the checkpoint's architecture; its weights are replaced.
            path: The checkpoint written by :func:`train.trainer.train_model`.
            config: Distillation settings (default :class:`DistillConfig`).
            spec: The architecture string the checkpoint must belong to; None skips the check.

        Returns:
            The frozen teacher; its identity is the checkpoint's spec and a hash of its weights,
            its classes and input shape those the checkpoint was trained on.

        Raises:
            UserError: As :func:`train.checkpoint.load_model_weights`.
        """
        state = load_model_weights(model, path, spec)
        data = state["config"]["data"]
        return cls(
            model=model,
            config=config if config is not None else DistillConfig(),
            identity=teacher_identity(state["spec"], model),
            classes=list(data["classes"]),
            input_shape=tuple(data["input_shape"]),
        )


def teacher_identity(spec: str, model: nn.Module) -> str:
    """``"<spec>@<hash>"``: the spec string and the first 16 hex digits of a SHA-256 of the model's state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)};".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{spec or 'model'}@{digest.hexdigest()[:16]}"


def _first_difference(teacher: list[str], student: list[str]) -> str:
    """Where two class lists first differ, for messages."""
    for i, (a, b) in enumerate(zip(teacher, student, strict=False)):
        if a != b:
            return f"class {i} is {a!r} for the teacher, {b!r} for the student"
    return f"{len(teacher)} classes for the teacher, {len(student)} for the student"


def _preview(items: list[str], head: int = 6) -> str:
    """A short form of a class list for messages: the first few names and the count."""
    if len(items) <= head:
        return str(items)
    return f"[{', '.join(repr(c) for c in items[:head])}, ...] ({len(items)} in all)"
