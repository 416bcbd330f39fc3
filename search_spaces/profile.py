"""ModelProfile: parameters, serialized fp32 size and MACs of a spec's network.

What ``macs_m`` counts: the multiply-accumulates of convolutions and linear layers at batch 1,
from fvcore's ``FlopCountAnalysis`` (which counts one multiply-add as one "flop"). Batch-norm is
left out on purpose: it folds into the preceding convolution at export, so it costs nothing on
the device (fvcore would count it as 1 op per element, thop as 2). Also left out: pooling,
activations, the SE gate's multiply and residual adds (memory-bound, a few % of the time; the
latency tables measure them). thop gives the same conv and linear MACs exactly (tested).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from search_spaces.functional import build_model
from search_spaces.spec import ArchSpec

MAC_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")  # fvcore operator names counted


@dataclass(frozen=True)
class ModelProfile:
    """Static cost of one network.

    Attributes:
        params: Trainable parameters.
        size_kb: Bytes of the fp32 ``state_dict`` serialized by ``torch.save`` (BatchNorm running
            statistics and the file's framing included), divided by 1024.
        macs_m: Convolution and linear multiply-accumulates at batch 1, in millions.
    """

    params: int
    size_kb: float
    macs_m: float


def profile(spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> ModelProfile:
    """Parameters, serialized size and MACs of the network of ``spec``.

    Args:
        spec: A spec of any registered space.
        n_classes: Number of output logits.
        input_shape: Per-example input shape without batch, e.g. ``(1, 40, 101)``.

    Raises:
        UserError: The input is too small for the spec's strides, or has the wrong rank.
    """
    model = build_model(spec, n_classes, input_shape).eval()
    return profile_model(model, input_shape)


def profile_model(model: nn.Module, input_shape: Sequence[int]) -> ModelProfile:
    """:class:`ModelProfile` of an already built model (e.g. one loaded from a checkpoint)."""
    params = sum(p.numel() for p in model.parameters())
    return ModelProfile(
        params=params, size_kb=state_dict_bytes(model) / 1024, macs_m=count_macs(model, input_shape) / 1e6
    )


def state_dict_bytes(model: nn.Module) -> int:
    """Length of ``torch.save(model.state_dict())`` in bytes."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Conv + linear multiply-accumulates of one forward pass at batch 1 (fvcore), see the module docstring."""
    x = torch.zeros(1, *input_shape)
    was_training = model.training
    model.eval()
    fvcore_logger = logging.getLogger("fvcore")
    level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)  # it logs every op it skips (ReLU, HardSigmoid, mul, add)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings; torch.jit deprecation at fvcore's import
            from fvcore.nn import FlopCountAnalysis  # lazily: about 0.3 s of imports

            analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_op = analysis.by_operator()
    finally:
        fvcore_logger.setLevel(level)
        model.train(was_training)
    return int(sum(count for op, count in by_op.items() if op in MAC_OPERATORS))
