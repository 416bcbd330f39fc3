"""ModelProfile: parameters, deployable fp32 size, checkpoint size and MACs of a spec's network.

What ``size_kb`` counts: the fp32 bytes of the weights an inference runtime holds, / 1024, i.e.
4 bytes per parameter after every BatchNorm is folded into the convolution before it (its scale and
shift become one bias per channel; its running statistics disappear). For a spec this comes from
:func:`search_spaces.units.deployable_size_kb` over ``trace()``, without torch; for a built model
from :func:`folded_param_count`. It is not the size of a ``torch.save`` file, which adds the
BatchNorm running statistics, ``num_batches_tracked`` and zip framing (1.01x the deployable size for
the ``medium`` baseline, 1.6x for an 8k-parameter model, 7x for ``mel2d``'s smallest spec); that is
``checkpoint_kb``.

What ``macs_m`` counts: the multiply-accumulates of convolutions and linear layers at batch 1,
from fvcore's ``FlopCountAnalysis`` (which counts one multiply-add as one "flop"). Batch-norm is
left out on purpose: it folds into the preceding convolution at export, so it costs nothing on
the device (fvcore would count it as 1 op per element, thop as 2). Also left out: pooling,
activations, the SE gate's multiply and residual adds (memory-bound, a few % of the time; the
latency tables measure them). thop gives the same conv and linear MACs exactly (tested).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from search_spaces.functional import build_model, trace
from search_spaces.spec import ArchSpec
from search_spaces.units import FP32_BYTES, deployable_size_kb

MAC_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")  # fvcore operator names counted
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class ModelProfile:
    """Static cost of one network.

    Attributes:
        params: Trainable parameters (BatchNorm scales and shifts included).
        size_kb: Deployable fp32 size in KiB: 4 bytes per weight of the model after every BatchNorm
            is folded into its convolution (``params`` minus one per BatchNorm channel), / 1024.
            No BatchNorm running statistics, no file framing.
        macs_m: Convolution and linear multiply-accumulates at batch 1, in millions.
        checkpoint_kb: Bytes of ``torch.save(model.state_dict())`` / 1024 (unfolded weights,
            BatchNorm running statistics and ``num_batches_tracked``, zip framing): the size of a
            training checkpoint's weights, not of the deployed model.
    """

    params: int
    size_kb: float
    macs_m: float
    checkpoint_kb: float


def profile(spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> ModelProfile:
    """Parameters, deployable size, checkpoint size and MACs of the network of ``spec``.

    ``size_kb`` comes from the traced units (pure python); the model is built for the MAC count
    and the checkpoint size.

    Args:
        spec: A spec of any registered space.
        n_classes: Number of output logits.
        input_shape: Per-example input shape without batch, e.g. ``(1, 40, 101)``.

    Raises:
        UserError: The input is too small for the spec's strides, or has the wrong rank.
    """
    size_kb = deployable_size_kb(trace(spec, n_classes, input_shape))
    model = build_model(spec, n_classes, input_shape).eval()
    return dataclasses.replace(profile_model(model, input_shape), size_kb=size_kb)


def profile_model(model: nn.Module, input_shape: Sequence[int]) -> ModelProfile:
    """:class:`ModelProfile` of an already built model (e.g. one loaded from a checkpoint).

    ``size_kb`` is ``4 * folded_param_count(model) / 1024``.

    Raises:
        ValueError: A BatchNorm of the model does not directly follow a convolution it can fold into.
    """
    return ModelProfile(
        params=sum(p.numel() for p in model.parameters()),
        size_kb=FP32_BYTES * folded_param_count(model) / 1024,
        macs_m=count_macs(model, input_shape) / 1e6,
        checkpoint_kb=state_dict_bytes(model) / 1024,
    )


def folded_param_count(model: nn.Module) -> int:
    """Parameters of ``model`` after folding every BatchNorm into the convolution registered just before it.

    Each folded BatchNorm drops its affine parameters and gives its convolution a bias (one per
    channel) unless it already has one. Counted on the module structure; nothing is modified.

    Raises:
        ValueError: A BatchNorm whose preceding leaf module is not a convolution with as many output
            channels (it could not be folded, so the count would be wrong).
    """
    total = sum(p.numel() for p in model.parameters())
    previous: nn.Module | None = None
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue  # containers; leaves come in registration order, which is SpecNet's execution order
        if isinstance(module, _BATCH_NORMS):
            conv = previous
            if not isinstance(conv, _CONVS) or conv.out_channels != module.num_features:
                raise ValueError(f"BatchNorm '{name}' does not follow a convolution it can fold into")
            total -= sum(p.numel() for p in module.parameters(recurse=False))
            total += 0 if conv.bias is not None else module.num_features
        previous = module
    return total


def state_dict_bytes(model: nn.Module) -> int:
    """Length of ``torch.save(model.state_dict())`` in bytes (:attr:`ModelProfile.checkpoint_kb` x 1024)."""
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
