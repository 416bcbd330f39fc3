"""The model card: a small JSON beside each ONNX file with everything a device needs to feed the model.

``onnx/small.int8_static.onnx`` has its card in ``onnx/small.int8_static.json``. A device turns
audio into the model's input with the card alone: resample to ``sample_rate``, crop or pad to
``n_samples``, compute the features of ``features`` (a :class:`train.features.FeatureConfig`),
normalise each band with ``norm_mean``/``norm_std`` (``(x - mean) / std``), reshape to ``input_shape`` with
a leading batch axis, feed ``input_name``, read ``output_name`` and name the argmax with ``classes``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dacite
import numpy as np
import onnx
import onnxruntime as ort

from common.atomic import atomic_write_json
from common.errors import UserError
from train.feature_set import Features
from train.features import FeatureConfig
from train.normalization import Normalization

CARD_FORMAT_VERSION = 1
_DACITE = dacite.Config(check_types=True, strict=True, type_hooks={float: float})


@dataclass(frozen=True)
class ModelCard:
    """What a device needs to run one ONNX model (plain data, written as JSON).

    Attributes:
        model_name: Name of the model in the run (e.g. ``small`` or a Pareto member's name).
        spec: Canonical ArchSpec string of the architecture.
        variant: Which file of the model this is, e.g. ``fp32``, ``int8_static``, ``int8_dynamic``.
        classes: Class names in output order (logit ``i`` is ``classes[i]``).
        sample_rate: Audio sample rate the features expect, in Hz.
        clip_seconds: Clip length in seconds; audio is centre-cropped or zero-padded to it.
        n_samples: Samples per clip (``sample_rate * clip_seconds``, rounded).
        feature_kind: ``logmel``, ``mfcc`` or ``waveform``.
        features: Every :class:`~train.features.FeatureConfig` field (``dataclasses.asdict``).
        norm_mean: Per-band mean of the training split (one value per feature row).
        norm_std: Per-band standard deviation of the training split.
        input_name: Name of the graph input.
        input_shape: Per-example input shape (without the batch axis), e.g. ``[1, 40, 101]``.
        output_name: Name of the graph output holding the logits.
        opset: ONNX opset of the file.
        onnxruntime_version: ONNX Runtime version the file was made and checked with.
        format_version: Version of this card's layout.
    """

    model_name: str
    spec: str
    variant: str
    classes: list[str]
    sample_rate: int
    clip_seconds: float
    n_samples: int
    feature_kind: str
    features: dict[str, Any]
    norm_mean: list[float]
    norm_std: list[float]
    input_name: str
    input_shape: list[int]
    output_name: str
    opset: int
    onnxruntime_version: str
    format_version: int = CARD_FORMAT_VERSION

    def feature_config(self) -> FeatureConfig:
        """The feature settings as a :class:`~train.features.FeatureConfig`."""
        return FeatureConfig.from_saved(self.features)

    def normalization(self) -> Normalization:
        """The per-band normalisation as a :class:`~train.normalization.Normalization`."""
        return Normalization.from_dict({"mean": self.norm_mean, "std": self.norm_std})


def card_path(onnx_path: str | os.PathLike) -> Path:
    """Where the card of ``onnx_path`` lives: the same stem with ``.json`` (``a.int8.onnx`` -> ``a.int8.json``)."""
    return Path(onnx_path).with_suffix(".json")


def make_card(
    onnx_path: str | os.PathLike, features: Features, *, model_name: str, spec: str, variant: str
) -> ModelCard:
    """The card of an exported ONNX file: names and opset read from the file, the rest from ``features``.

    Args:
        onnx_path: The ONNX file the card describes.
        features: The features the model was trained on (classes, settings, normalisation).
        model_name: Name of the model in the run.
        spec: Canonical ArchSpec string.
        variant: ``fp32``, ``int8_static``, ...
    """
    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    cfg = features.config
    return ModelCard(
        model_name=model_name,
        spec=spec,
        variant=variant,
        classes=list(features.classes),
        sample_rate=cfg.sample_rate,
        clip_seconds=float(cfg.clip_seconds),
        n_samples=cfg.n_samples,
        feature_kind=cfg.kind,
        features=dataclasses.asdict(cfg),
        norm_mean=[float(v) for v in features.normalization.mean],
        norm_std=[float(v) for v in features.normalization.std],
        input_name=model.graph.input[0].name,
        input_shape=list(features.input_shape),
        output_name=model.graph.output[0].name,
        opset=int(opset),
        onnxruntime_version=ort.__version__,
    )


def write_card(onnx_path: str | os.PathLike, card: ModelCard) -> Path:
    """Write ``card`` atomically beside ``onnx_path`` and return the card's path."""
    path = card_path(onnx_path)
    atomic_write_json(path, dataclasses.asdict(card))
    return path


def read_card(onnx_path: str | os.PathLike) -> ModelCard:
    """The card beside ``onnx_path``, validated.

    Raises:
        UserError: The card is missing, is not JSON, comes from a newer format, lacks a field,
            has a field of the wrong type, or holds settings that do not fit together; the
            message names the file and the field.
    """
    path = card_path(onnx_path)
    if not path.is_file():
        raise UserError(f"{onnx_path} has no model card {path.name} beside it; export models with --mode quantization")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"model card {path} is not valid JSON ({exc}); re-export with --mode quantization") from None
    if not isinstance(data, dict):
        raise UserError(f"model card {path} must hold a JSON object, got {type(data).__name__}")
    return _card_from_dict(data, path)


def _card_from_dict(data: dict[str, Any], path: Path) -> ModelCard:
    version = data.get("format_version", CARD_FORMAT_VERSION)
    if not isinstance(version, int) or version > CARD_FORMAT_VERSION:
        raise UserError(
            f"model card {path} has format_version {version!r}; this tool reads versions up to {CARD_FORMAT_VERSION}"
        )
    required = [f.name for f in dataclasses.fields(ModelCard) if f.default is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise UserError(f"model card {path} lacks the field(s) {', '.join(repr(m) for m in missing)}")
    try:
        card = dacite.from_dict(ModelCard, data, config=_DACITE)
    except dacite.WrongTypeError as exc:
        tp = exc.field_type
        expected = tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")
        raise UserError(
            f"model card {path}: field '{exc.field_path}' should be {expected}, got {exc.value!r}"
        ) from None
    except dacite.UnexpectedDataError as exc:
        raise UserError(f"model card {path} has unknown field(s) {', '.join(sorted(exc.keys))}") from None
    _check_consistent(card, path)
    return card


def _check_consistent(card: ModelCard, path: Path) -> None:
    """Settings that must agree: the feature config parses, the statistics fit its bands."""
    try:
        cfg = card.feature_config()
    except (TypeError, ValueError) as exc:
        raise UserError(f"model card {path}: field 'features' is not a valid feature config ({exc})") from None
    for name in ("norm_mean", "norm_std"):
        values = getattr(card, name)
        if len(values) != cfg.n_bins or not np.isfinite(values).all() or (name == "norm_std" and min(values) <= 0):
            raise UserError(
                f"model card {path}: field '{name}' must hold {cfg.n_bins} finite numbers (one per feature band"
                f"{', all > 0' if name == 'norm_std' else ''}), got {len(values)} values"
            )
    for name in ("sample_rate", "clip_seconds", "n_samples", "feature_kind"):
        config_name = {"feature_kind": "kind"}.get(name, name)
        expected = getattr(cfg, config_name)
        if getattr(card, name) != expected:
            raise UserError(
                f"model card {path}: field '{name}' is {getattr(card, name)!r} but 'features' says {expected!r}"
            )
