"""Quantization-aware fine-tuning (QAT) for models whose static INT8 misses the accuracy bound.

The route, all in torch's own tools:

1. Fold BatchNorm into the convolutions (eval-mode fusion, ``torch.fx.experimental.optimization.fuse``).
2. ``prepare_qat_fx`` with ONNX Runtime's scheme: per-channel symmetric qint8 weights, per-tensor
   affine quint8 activations. Conv+ReLU and Linear+ReLU are fused, so activations are
   fake-quantized where ORT's QDQ graph quantizes them.
3. Calibrate the activation observers on training clips, then freeze them; weight observers
   keep following the weights. Fine-tune from the trained fp32 weights with the project's
   trainer (:func:`train.trainer.train_model`) at a low learning rate, selecting on val.
4. Export the fake-quant model with the TorchScript exporter: each FakeQuantize becomes a
   QuantizeLinear/DequantizeLinear pair. The weights' QuantizeLinear nodes are then folded into
   INT8 initializers, so the file is as small as a static INT8 one; ORT quantizes the float
   biases itself at session start and runs integer kernels.

``torch.ao.quantization`` is deprecated in favour of torchao's PT2E flow, but still works in
torch 2.13; its deprecation warnings are silenced here, since a user cannot act on them.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write_bytes
from common.onnx_export import export_onnx
from quantize.export import INPUT_NAME, ExportResult, OnnxParityError
from quantize.onnx_graph import fold_weight_quantizers
from quantize.ort_eval import onnx_logits, open_session
from train.feature_set import Features
from train.train_config import TrainConfig
from train.trainer import train_model

CALIBRATION_CLIPS = 256  # training clips that set the activation ranges before fine-tuning
_TRACER_BOOL = r"Converting a tensor to a Python boolean"  # FakeQuantize's enabled flags, traced as constants
MIN_AGREEMENT = 0.9  # least top-1 agreement of ORT with the torch fake-quant model on the sample inputs


def ort_qconfig_mapping(reduce_range: bool = False) -> torch.ao.quantization.QConfigMapping:
    """The QConfigMapping of ONNX Runtime's static scheme (per-channel qint8 weights, quint8 activations).

    Args:
        reduce_range: 7-bit weights (-63..63), for x86 targets without VNNI (see :mod:`quantize.int8`).
    """
    from torch.ao.quantization import (
        FakeQuantize,
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
        QConfig,
        QConfigMapping,
    )

    activation = FakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver,
        quant_min=0,
        quant_max=255,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
    )
    weight = FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver,
        quant_min=-63 if reduce_range else -128,  # 7 bits, symmetric: the top weight maps to exactly 63
        quant_max=63 if reduce_range else 127,
        dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric,
    )
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


def prepare_qat(model: nn.Module, calibration: np.ndarray, reduce_range: bool = False) -> torch.fx.GraphModule:
    """The fake-quant training graph of a trained fp32 model, with activation ranges set and frozen.

    Args:
        model: The trained fp32 model (a :class:`~search_spaces.blocks.SpecNet` or any
            FX-traceable classifier); it is not modified.
        calibration: Normalised inputs, shape ``(n, *input_shape)``, that set the activation ranges.
        reduce_range: 7-bit weights (see :func:`ort_qconfig_mapping`).

    Returns:
        A GraphModule in train mode whose weights start from ``model``'s (BatchNorm folded).
    """
    with _quiet_torch_ao():
        from torch.ao.quantization import disable_observer
        from torch.ao.quantization.quantize_fx import prepare_qat_fx
        from torch.fx.experimental.optimization import fuse

        was_training = model.training
        folded = fuse(_traceable(model).eval())  # a copy, BatchNorm folded in eval mode
        x = torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32))
        prepared = prepare_qat_fx(folded.train(), ort_qconfig_mapping(reduce_range), (x[:1],))
        prepared.eval()  # observers still observe; dropout is off, as at inference
        with torch.no_grad():
            for start in range(0, len(x), 64):
                prepared(x[start : start + 64])
    for name, module in prepared.named_modules():
        if name.startswith("activation_post_process"):
            module.apply(disable_observer)  # activations keep their calibrated ranges
    model.train(was_training)
    return prepared.train()


def qat_finetune(
    model: nn.Module,
    features: Features,
    train_cfg: TrainConfig,
    *,
    epochs: int = 3,
    lr: float = 1e-4,
    calibration_clips: int = CALIBRATION_CLIPS,
    reduce_range: bool = False,
) -> torch.fx.GraphModule:
    """Fine-tune a trained model quantization-aware; return the fake-quant model in eval mode.

    Args:
        model: The trained fp32 model; it is not modified.
        features: The features it was trained on (train split to fine-tune, val split to select).
        train_cfg: Training settings (batch size, seed, threads, device, augmentation, ...);
            ``epochs`` and ``lr`` replace its own, it starts from the given weights
            (``reinit=False``), without warm-up, in the contiguous layout, and writes no checkpoint.
        epochs: Fine-tuning epochs.
        lr: Peak learning rate (cosine decay to 0); a tenth to a hundredth of the training one.
        calibration_clips: Training clips (a draw seeded by ``train_cfg.seed``) that set the activation ranges.
        reduce_range: 7-bit weights, for x86 targets without VNNI.

    Returns:
        The fake-quant GraphModule holding the best validation epoch's weights, on the CPU;
        pass it to :func:`export_qat`.
    """
    train = features.splits.train
    rng = np.random.default_rng(train_cfg.seed)
    calibration, _ = features.batch(np.sort(rng.choice(train, size=min(calibration_clips, len(train)), replace=False)))
    prepared = prepare_qat(model, calibration, reduce_range)
    # Fake-quant graphs train in the layout they were calibrated and exported in (channels-last is
    # measured for plain training only).
    cfg = dataclasses.replace(
        train_cfg, epochs=epochs, lr=lr, reinit=False, warmup_epochs=0.0, memory_format="contiguous"
    )
    with _quiet_torch_ao():
        train_model(prepared, features, cfg, spec=getattr(model, "arch", ""))
    return prepared.cpu().eval()


def export_qat(
    model: torch.fx.GraphModule,
    input_shape: Sequence[int],
    path: str | os.PathLike,
    *,
    sample_inputs: np.ndarray,
    opset: int = 17,
) -> ExportResult:
    """Export a fake-quant model (from :func:`qat_finetune`) to a QDQ INT8 ONNX file, after checking it.

    ORT's logits on ``sample_inputs`` are compared with the torch fake-quant model's: the two
    round differently here and there (and integer kernels may saturate on CPUs without VNNI),
    so the check is top-1 agreement of at least 90 %, and ``max_abs_diff`` is reported.

    Args:
        model: The fake-quant model. Its observers are disabled (ranges frozen), and 7-bit
            weights are clipped to their quantization range, which changes nothing it computes.
        input_shape: Per-example input shape.
        path: Destination ``.onnx`` file, written atomically.
        sample_inputs: Real normalised inputs, shape ``(n, *input_shape)``.
        opset: ONNX opset (13 or more for per-channel QuantizeLinear).

    Raises:
        OnnxParityError: ORT's predictions agree with torch's on fewer than 90 % of the samples.
    """
    with _quiet_torch_ao():
        from torch.ao.quantization import disable_observer

    model = model.cpu().eval()
    model.apply(disable_observer)
    x = np.ascontiguousarray(sample_inputs, dtype=np.float32)
    with _quiet_torch_ao(), _full_int8_range(model):
        data = export_onnx(model, tuple(input_shape), opset=opset, dynamic_batch=True, input_names=[INPUT_NAME])
    data = fold_weight_quantizers(data)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    actual = onnx_logits(open_session(data), x, batch_size=len(x))
    agreement = float(np.mean(actual.argmax(axis=1) == expected.argmax(axis=1)))
    if actual.shape != expected.shape or not np.isfinite(actual).all() or agreement < MIN_AGREEMENT:
        raise OnnxParityError(
            f"QAT ONNX model for {path} agrees with the torch fake-quant model on {100 * agreement:.0f} % of "
            f"{len(x)} sample inputs (needs {100 * MIN_AGREEMENT:.0f} %); the file was not written"
        )
    atomic_write_bytes(path, data)
    diff = float(np.abs(actual - expected).max())
    return ExportResult(path=Path(path), size_kb=len(data) / 1024, max_abs_diff=diff, opset=opset)


def _traceable(model: nn.Module) -> nn.Module:
    """``model`` without data-dependent Python control flow in ``forward``, for FX.

    A SpecNet's forward checks the input's rank (for waveform models); its stem, blocks and head
    in sequence compute the same for the inputs ``Features.batch`` produces.
    """
    if all(hasattr(model, part) for part in ("stem", "blocks", "head")):
        return nn.Sequential(model.stem, model.blocks, model.head)
    return model


@contextmanager
def _full_int8_range(model: nn.Module) -> Iterator[None]:
    """Declare 7-bit weight fake-quants as -128..127 while exporting (the exporter accepts no other int8 range).

    Exact: each such weight is first clipped to its channel's representable range (+-63 steps),
    which leaves its fake-quantized value, and so the model, unchanged; no weight can then round
    beyond -63..63 in the wider range either.
    """
    from torch.ao.quantization import FakeQuantize

    reduced = []
    for module in model.modules():
        fake_quant = getattr(module, "weight_fake_quant", None)
        if not isinstance(fake_quant, FakeQuantize):
            continue
        observer = fake_quant.activation_post_process  # FakeQuantize.forward reads its observer's range
        if (observer.quant_min, observer.quant_max) != (-63, 63):
            continue
        shape = [-1] + [1] * (module.weight.dim() - 1)  # per output channel (axis 0)
        limit = 63 * fake_quant.scale.reshape(shape)
        with torch.no_grad():
            module.weight.copy_(torch.maximum(torch.minimum(module.weight, limit), -limit))
        observer.quant_min, observer.quant_max = -128, 127
        reduced.append(observer)
    try:
        yield
    finally:
        for observer in reduced:
            observer.quant_min, observer.quant_max = -63, 63


@contextmanager
def _quiet_torch_ao() -> Iterator[None]:
    """Silence torch.ao.quantization's deprecation and fixed-qparams notices and FakeQuantize's tracer warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is deprec", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=_TRACER_BOOL, category=torch.jit.TracerWarning)
        # Sigmoid-type ops (the SE gate) keep their fixed output range, which is what ORT's QDQ graph
        # does too; torch says so per op and per model, with a code example the user cannot act on.
        warnings.filterwarnings("ignore", message=r"QConfig must specify a FixedQParamsObserver")
        yield
