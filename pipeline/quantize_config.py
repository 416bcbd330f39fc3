"""Typed settings of the quantization stage: survivors, full training, distillation, export and INT8."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

VARIANTS = ("fp32", "int8_dynamic", "int8_static", "int8_static_aa", "int8_qat")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
STUDENTS = ("survivors", "all", "none")
REDUCE_RANGE = ("auto", "on", "off")


@dataclass(frozen=True)
class DistillSettings:
    """Knowledge distillation of the fully trained students from a frozen teacher.

    ``teacher``: ``auto`` (the fully trained model of the run with the best validation accuracy),
    the name of a model of the run (a baseline such as ``medium``, or a survivor's ``nas-...``
    name), or the path of a training checkpoint (``best.pt``) with ``teacher_spec`` naming its
    architecture.
    """

    students: str = "survivors"  # survivors | all (every trained model but the teacher) | none (no distillation)
    teacher: str = "auto"
    teacher_spec: str | None = None  # architecture of a teacher given as a checkpoint path
    temperature: float = 4.0  # softmax temperature of both teacher and student in the KD term
    alpha: float = 0.5  # weight of the hard-label cross-entropy; 1 - alpha weighs T^2 * KL(teacher || student)

    def __post_init__(self) -> None:
        if self.students not in STUDENTS:
            raise ValueError(f"quantize.distill.students must be one of {', '.join(STUDENTS)}, got '{self.students}'")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"quantize.distill.temperature must be > 0, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"quantize.distill.alpha must be in [0, 1], got {self.alpha}")


@dataclass(frozen=True)
class QuantizeConfig:
    """From the run's baselines and search front to trained, distilled, INT8 ONNX models, re-measured.

    Survivors and distilled students are trained with the ``train`` section (``--epochs``) for
    ``seeds`` seeds; baselines already trained in the run folder (``--mode baseline``) are used as
    they are.
    """

    survivors: int = 5  # search front members kept (crowding-distance thinning, extremes kept)
    survivor_specs: tuple[str, ...] = ()  # exactly these front members instead (--mode full's budget sets it)
    seeds: int = 1  # training runs per survivor and per distilled student (seed = run.seed + k)
    variants: tuple[str, ...] = VARIANTS  # int8_qat runs only where plain static INT8 misses max_accuracy_drop_pts
    opset: int = 17  # ONNX opset of every export
    parity_atol: float = 1e-4  # torch vs ONNX Runtime: largest |logit difference| / max(1, max |logit|)
    calibration_clips: int = 256  # train-split clips that calibrate static INT8 (fewer if the split is smaller)
    calibration_method: str = "minmax"  # minmax | entropy | percentile
    reduce_range: str = "auto"  # 7-bit weights: auto (on for x86 without VNNI: 8-bit products overflow) | on | off
    max_accuracy_drop_pts: float = 0.5  # accuracy-aware INT8: largest validation accuracy drop vs fp32, in points
    qat_epochs: int = 3  # fake-quant fine-tuning epochs (int8_qat)
    qat_lr: float = 1e-4  # fine-tuning learning rate (int8_qat)
    distill: DistillSettings = field(default_factory=DistillSettings)

    def __post_init__(self) -> None:
        if self.survivors < 0:
            raise ValueError(f"quantize.survivors must be >= 0, got {self.survivors}")
        if self.seeds < 1:
            raise ValueError(f"quantize.seeds must be >= 1, got {self.seeds}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or "fp32" not in self.variants:
            raise ValueError(f"quantize.variants must include fp32 and name only {', '.join(VARIANTS)}; got "
                             f"{', '.join(self.variants)}")  # fmt: skip
        if "int8_qat" in self.variants and "int8_static" not in self.variants:
            raise ValueError("quantize.variants: int8_qat needs int8_static (QAT runs where plain static INT8 misses "
                             "the accuracy bound)")  # fmt: skip
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ValueError(f"quantize.calibration_method must be one of {', '.join(CALIBRATION_METHODS)}, got "
                             f"'{self.calibration_method}'")  # fmt: skip
        if self.reduce_range not in REDUCE_RANGE:
            choices = ", ".join(REDUCE_RANGE)
            raise ValueError(f"quantize.reduce_range must be one of {choices}, got '{self.reduce_range}'")
        if self.calibration_clips < 1:
            raise ValueError(f"quantize.calibration_clips must be >= 1, got {self.calibration_clips}")
        if not (math.isfinite(self.max_accuracy_drop_pts) and self.max_accuracy_drop_pts >= 0):
            raise ValueError(
                f"--max-accuracy-drop (quantize.max_accuracy_drop_pts) must be >= 0 accuracy points, got "
                f"{self.max_accuracy_drop_pts}"
            )
        if not 13 <= self.opset <= 21:  # per-channel QDQ needs opset 13
            raise ValueError(f"quantize.opset must be in 13..21, got {self.opset}")
        if not (self.parity_atol > 0 and math.isfinite(self.parity_atol)):
            raise ValueError(f"quantize.parity_atol must be > 0, got {self.parity_atol}")
        if self.qat_epochs < 1 or not self.qat_lr > 0:
            raise ValueError(f"quantize.qat_epochs must be >= 1 and qat_lr > 0, got {self.qat_epochs}, {self.qat_lr}")

    def resolved_reduce_range(self) -> bool:
        """Whether weights are quantized to 7 bits: ``auto`` is on for x86 CPUs without VNNI.

        Without VNNI, ONNX Runtime's u8s8 integer kernels add pairs of 8-bit products in 16 bits,
        which saturates; 7-bit weights avoid it (onnxruntime quantization docs: ``reduce_range``).
        The accuracy measured here is then what such a CPU delivers.
        """
        if self.reduce_range != "auto":
            return self.reduce_range == "on"
        import platform

        from latency_tables.device_info import cpu_flags

        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
        return x86 and not {"avx512_vnni", "avx_vnni"} & set(cpu_flags())
