"""UnitInfo: one fused unit of a built model (stem, block or head) with its shapes, in pure python.

A model built from an ArchSpec is ``stem -> blocks[0] -> ... -> blocks[n-1] -> head``; each of
those modules is one unit. :func:`search_spaces.blocks.build_unit` builds any unit alone, so a
latency table can export and time it by itself, and the parameter counts of a unit (trainable, and
deployable after BatchNorm folding) are computed here without torch (the tests check both against
the built model).

Deployable size: every convolution of a stem/conv/ds/ir unit is followed by a BatchNorm over its
output channels and has no bias. At export (eval mode) each BatchNorm folds into its convolution:
its scale multiplies the kernel, and its shift becomes the convolution's bias. So a BatchNorm's 2
parameters per channel (and its running statistics, which are buffers) become 1 bias per channel.
SE convolutions and head linears carry their own biases and no BatchNorm. :func:`deployable_size_kb`
of a unit list is the fp32 size of the weights an inference runtime holds, without building the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import prod

from common.errors import UserError

UNIT_KINDS = ("stem", "conv", "ds", "ir", "head")
FP32_BYTES = 4  # bytes of one fp32 weight
# Per output channel in a QDQ INT8 ONNX file, beyond one byte: int8 weight zero-point (1), int32 bias (4) and its
# int32 zero-point (4), fp32 weight and bias scales (4 + 4); 17 bytes where the weight count gives the bias 1.
INT8_BIAS_EXTRA_BYTES = 16


@dataclass(frozen=True)
class UnitInfo:
    """One unit and the shapes it sees (without the batch dimension).

    The rank of ``in_shape`` tells 2D units ``(C, H, W)`` (H = mel bins, W = frames) from 1D
    units ``(C, L)`` (L = samples).

    Attributes:
        kind: ``stem`` or ``conv`` (conv-bn-relu [+SE] in 2D; conv1d-bn-relu[-maxpool] in 1D),
            ``ds`` (depthwise-separable), ``ir`` (inverted residual) or ``head`` (global average
            pool, optional hidden linear + ReLU, dropout, linear classifier).
        in_shape: Input shape.
        out_shape: Output shape; ``(n_classes,)`` for the head.
        kernel: Kernel size per spatial axis; ``()`` for the head.
        stride: Stride of the convolution (the depthwise one in ``ds``/``ir``).
        expansion: Hidden-width multiplier of ``ir``; 1 otherwise.
        se: Squeeze-and-excitation present.
        residual: Identity shortcut added (``ds``/``ir`` with stride 1 and equal channels).
        pool: Max-pool size after a 1D conv; 1 means none.
        hidden: Hidden units of the head; 0 means none.
        dropout: Dropout before the classifier (head only; identity at inference).
        params: Trainable parameters of the unit (BatchNorm scales and shifts included).
        macs: Conv and linear multiply-accumulates at batch 1 (what ``profile`` counts as ``macs_m``).
    """

    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    stride: int = 1
    expansion: int = 1
    se: bool = False
    residual: bool = False
    pool: int = 1
    hidden: int = 0
    dropout: float = 0.0
    params: int = 0
    macs: int = 0

    @property
    def folded_params(self) -> int:
        """Weights of the unit as deployed, after every BatchNorm is folded into its convolution.

        ``params`` minus one per BatchNorm channel: each BatchNorm's scale and shift (2 per channel)
        become one bias per channel of the convolution before it. Computed from the unit's structure
        (not from ``params``), so it holds for any unit from :func:`search_spaces.trace`.
        """
        if self.kind == "head":
            return head_params(self.in_shape[0], self.hidden, self.out_shape[0])
        return unit_folded_params(self.kind, self.in_shape[0], self.out_shape[0], self.kernel, self.expansion, self.se)

    @property
    def size_bytes(self) -> int:
        """fp32 bytes of the unit's deployable weights: ``4 * folded_params``."""
        return FP32_BYTES * self.folded_params

    @property
    def bias_channels(self) -> int:
        """Output channels of all the unit's convolutions and linear layers: one bias each once deployed."""
        if self.kind == "head":
            return self.hidden + self.out_shape[0]
        return unit_bias_channels(self.kind, self.in_shape[0], self.out_shape[0], self.expansion, self.se)

    @property
    def int8_size_bytes(self) -> int:
        """Bytes of the unit's weights in a static INT8 (QDQ, per-channel) ONNX file.

        Each weight one byte; each output channel, as ONNX Runtime's quantizer stores it, an int8
        weight zero-point, an int32 bias with an int32 zero-point, and float32 weight and bias scales
        (17 bytes where the weight count gives the bias 1): ``folded_params + 16 * bias_channels``.
        Activation scales and zero-points (5 bytes per quantized tensor) are left out: they are
        within 0.3% of the initializers of the project's ``int8_static`` files on FSDD (baselines and a survivor).
        """
        return self.folded_params + INT8_BIAS_EXTRA_BYTES * self.bias_channels

    @property
    def activations(self) -> int:
        """Elements of the feature maps the unit writes per example: what its training moves through memory.

        Its output, plus the inner maps of ``ds`` (the depthwise output) and ``ir`` (the expansion's
        output at the input resolution, then the depthwise output); in 1D, the convolution's map
        before its max-pool. The head's vectors are left out. Proxy training time follows this
        more closely than MACs (``benchmarks/bench_dispatch.py``).
        """
        if self.kind == "head":
            return 0
        (cin, *in_sp), cout = self.in_shape, self.out_shape[0]
        out_area = prod(conv_out(n, k, self.stride) for n, k in zip(in_sp, self.kernel, strict=True))  # before a pool
        if self.kind == "ds":
            return out_area * (cin + cout)
        if self.kind == "ir":
            hidden = cin * self.expansion
            expand = prod(in_sp) * hidden if self.expansion != 1 else 0
            return expand + out_area * (hidden + cout)
        return out_area * cout

    @property
    def key(self) -> str:
        """Filename-safe string of everything that shapes the module: equal keys, identical modules.

        Format: ``kind_IN_OUT`` (shapes joined by ``x``), then for conv units ``_k<kernel>_s<stride>``,
        ``_e<expansion>`` for ``ir``, ``_se``, ``_res`` and ``_p<pool>`` when they apply, and
        ``_h<hidden>`` for a head with a hidden layer. ``dropout``, ``params`` and ``macs`` are left out
        (dropout is the identity at inference; the others follow from the rest). Example:
        ``ir_32x20x51_32x20x51_k5x5_s1_e4_se_res``.
        """
        parts = [self.kind, _dims(self.in_shape), _dims(self.out_shape)]
        if self.kind != "head":
            parts += [f"k{_dims(self.kernel)}", f"s{self.stride}"]
        parts += [f"e{self.expansion}"] if self.kind == "ir" else []
        parts += ["se"] if self.se else []
        parts += ["res"] if self.residual else []
        parts += [f"p{self.pool}"] if self.pool > 1 else []
        parts += [f"h{self.hidden}"] if self.hidden else []
        return "_".join(parts)


def _dims(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


def se_channels(channels: int) -> int:
    """Squeeze width of the SE module on ``channels`` channels: a quarter, at least 8."""
    return max(8, channels // 4)


def conv_out(n: int, kernel: int, stride: int) -> int:
    """Output extent of a convolution with padding ``kernel // 2`` (the only padding used here)."""
    return (n + 2 * (kernel // 2) - kernel) // stride + 1


def unit_params(kind: str, cin: int, cout: int, kernel: tuple[int, ...], expansion: int = 1, se: bool = False) -> int:
    """Trainable parameters of a conv unit (convs have no bias; each BatchNorm has 2 per channel).

    Args:
        kind: ``stem``, ``conv``, ``ds`` or ``ir``.
        cin: Input channels.
        cout: Output channels.
        kernel: Kernel size per spatial axis.
        expansion: Hidden-width multiplier (``ir`` only).
        se: Squeeze-and-excitation present.
    """
    area = prod(kernel)
    if kind in ("stem", "conv"):
        return cin * cout * area + 2 * cout + (_se_params(cout) if se else 0)
    if kind == "ds":
        return cin * area + 2 * cin + (_se_params(cin) if se else 0) + cin * cout + 2 * cout
    if kind == "ir":
        hidden = cin * expansion
        expand = cin * hidden + 2 * hidden if expansion != 1 else 0
        return expand + hidden * area + 2 * hidden + (_se_params(hidden) if se else 0) + hidden * cout + 2 * cout
    raise ValueError(f"unknown unit kind '{kind}'")


def unit_bn_channels(kind: str, cin: int, cout: int, expansion: int = 1) -> int:
    """Channels of all BatchNorms of a conv unit: one BatchNorm follows each of its convolutions.

    Args:
        kind: ``stem``, ``conv``, ``ds`` or ``ir``.
        cin: Input channels.
        cout: Output channels.
        expansion: Hidden-width multiplier (``ir`` only).
    """
    if kind in ("stem", "conv"):
        return cout
    if kind == "ds":
        return cin + cout  # depthwise, pointwise
    if kind == "ir":
        hidden = cin * expansion
        return (hidden if expansion != 1 else 0) + hidden + cout  # expand, depthwise, project
    raise ValueError(f"unknown unit kind '{kind}'")


def unit_bias_channels(kind: str, cin: int, cout: int, expansion: int = 1, se: bool = False) -> int:
    """Output channels of every convolution of a conv unit once BatchNorms are folded (each has a bias then).

    The BatchNorm channels (:func:`unit_bn_channels`) plus, with SE, its two 1x1 convolutions' biases.
    """
    channels = unit_bn_channels(kind, cin, cout, expansion)
    if se:
        width = {"stem": cout, "conv": cout, "ds": cin, "ir": cin * expansion}[kind]
        channels += se_channels(width) + width
    return channels


def unit_folded_params(
    kind: str, cin: int, cout: int, kernel: tuple[int, ...], expansion: int = 1, se: bool = False
) -> int:
    """Deployable weights of a conv unit: :func:`unit_params` with each BatchNorm folded into its conv.

    A folded BatchNorm leaves one bias per channel in place of its scale and shift, so this is
    ``unit_params(...) - unit_bn_channels(...)``. Arguments as in :func:`unit_params`.
    """
    return unit_params(kind, cin, cout, kernel, expansion, se) - unit_bn_channels(kind, cin, cout, expansion)


def deployable_size_kb(units: Iterable[UnitInfo]) -> float:
    """fp32 size in KiB of a model's deployable weights, from its traced units (no model is built).

    ``sum(u.folded_params for u in units) * 4 / 1024``: the weights after BatchNorm folding (see the
    module docstring), without BatchNorm running statistics or any file framing. This is what
    :attr:`search_spaces.ModelProfile.size_kb` reports.

    Example:
        >>> deployable_size_kb(trace(spec, n_classes=10, input_shape=(1, 40, 101)))
    """
    return sum(u.size_bytes for u in units) / 1024


def int8_size_kb(units: Iterable[UnitInfo]) -> float:
    """KiB of a model's weights after static INT8 quantization, per-channel (:attr:`UnitInfo.int8_size_bytes`)."""
    return sum(u.int8_size_bytes for u in units) / 1024


def unit_macs(
    kind: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...], kernel: tuple[int, ...], expansion: int, se: bool
) -> int:
    """Conv multiply-accumulates of a stem/conv/ds/ir unit at batch 1 (1D: before the max-pool).

    Args:
        kind: ``stem``, ``conv``, ``ds`` or ``ir``.
        in_shape: ``(C, H, W)`` or ``(C, L)``.
        out_shape: Shape after the (strided) convolution; in 1D pass the length before pooling.
        kernel: Kernel size per spatial axis.
        expansion: Hidden-width multiplier (``ir`` only).
        se: Squeeze-and-excitation present (its two 1x1 convs run on a 1x1 map).
    """
    (cin, *in_sp), (cout, *out_sp) = in_shape, out_shape
    in_area, out_area, k_area = prod(in_sp), prod(out_sp), prod(kernel)
    if kind in ("stem", "conv"):
        return out_area * cin * cout * k_area + (_se_macs(cout) if se else 0)
    if kind == "ds":
        return out_area * cin * (k_area + cout) + (_se_macs(cin) if se else 0)
    if kind == "ir":
        hidden = cin * expansion
        expand = in_area * cin * hidden if expansion != 1 else 0
        return expand + out_area * hidden * (k_area + cout) + (_se_macs(hidden) if se else 0)
    raise ValueError(f"unknown unit kind '{kind}'")


def head_unit(in_shape: tuple[int, ...], n_classes: int, hidden: int = 0, dropout: float = 0.0) -> UnitInfo:
    """The head unit on a ``in_shape`` feature map: pool, optional hidden layer, classifier."""
    return UnitInfo(
        "head",
        in_shape,
        (n_classes,),
        hidden=hidden,
        dropout=dropout,
        params=head_params(in_shape[0], hidden, n_classes),
        macs=head_macs(in_shape[0], hidden, n_classes),
    )


def head_macs(cin: int, hidden: int, n_classes: int) -> int:
    """Linear multiply-accumulates of the head at batch 1."""
    return cin * hidden + hidden * n_classes if hidden else cin * n_classes


def head_params(cin: int, hidden: int, n_classes: int) -> int:
    """Trainable parameters of the head: optional hidden linear layer, then the classifier."""
    if hidden:
        return cin * hidden + hidden + hidden * n_classes + n_classes
    return cin * n_classes + n_classes


def _se_params(channels: int) -> int:
    squeeze = se_channels(channels)
    return 2 * channels * squeeze + squeeze + channels  # two 1x1 convs with bias


def _se_macs(channels: int) -> int:
    return 2 * channels * se_channels(channels)


def check_extent(axis: str, n: int, steps: list[tuple[str, int, int]], arch: str) -> None:
    """Refuse an input too short along one axis for the strides (and pools) applied along it.

    Every step with stride ``s`` needs at least ``s`` positions at its input: with fewer, a conv
    would only see padding and a max-pool would have no output.

    Args:
        axis: Human name of the axis (``mel bins``, ``frames``, ``samples``).
        n: Input extent along the axis.
        steps: ``(label, kernel, stride)`` in order; a max-pool is ``(label, 0, size)`` (no padding).
        arch: The arch string, quoted in the message.

    Raises:
        UserError: Naming the axis, the step that fails and the smallest extent that works.
    """
    failing = _first_failure(n, steps)
    if failing is None:
        return
    label, extent = failing
    need = next(m for m in range(n + 1, 1 << 24) if _first_failure(m, steps) is None)
    n_strided = sum(1 for _, _, s in steps if s > 1)
    raise UserError(
        f"input too small for '{arch}': {label} gets {extent} {axis} but needs at least its stride; "
        f"its {n_strided} strided/pooling steps need at least {need} {axis} in the input, which has {n}. "
        f"Use longer/larger inputs or an architecture with fewer strides."
    )


def _first_failure(n: int, steps: list[tuple[str, int, int]]) -> tuple[str, int] | None:
    for label, kernel, stride in steps:
        if n < stride:
            return label, n
        n = n // stride if kernel == 0 else conv_out(n, kernel, stride)
    return None
