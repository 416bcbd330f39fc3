"""The nn.Modules of every unit kind, and ``build_unit(UnitInfo)`` that builds any unit standalone.

All ops export to ONNX and fuse in ONNX Runtime: Conv+BatchNorm fold, Conv+ReLU fuse, global
average pooling, HardSigmoid for the SE gate. Convolutions that feed a BatchNorm have no bias;
padding is ``kernel // 2`` per axis.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from search_spaces.units import UnitInfo, se_channels


def conv_bn(cin: int, cout: int, kernel: tuple[int, ...], stride: int = 1, groups: int = 1, act: bool = True):
    """Conv (1D or 2D by ``len(kernel)``) + BatchNorm [+ ReLU] as a Sequential with named children."""
    conv_cls, bn_cls = (nn.Conv1d, nn.BatchNorm1d) if len(kernel) == 1 else (nn.Conv2d, nn.BatchNorm2d)
    padding = tuple(k // 2 for k in kernel)
    layers = OrderedDict(
        conv=conv_cls(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        bn=bn_cls(cout),
    )
    if act:
        layers["act"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class SqueezeExcite(nn.Module):
    """Channel gate: global average pool, 1x1 conv to ``se_channels(c)``, ReLU, 1x1 conv, HardSigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = se_channels(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W), each channel scaled by its gate in [0, 1]."""
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class PlainConv(nn.Module):
    """Conv-bn-relu with optional SE (stem and ``conv`` units), or conv1d-bn-relu-maxpool in 1D."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, ...], stride: int, se: bool, pool: int) -> None:
        super().__init__()
        self.conv = conv_bn(cin, cout, kernel, stride)
        self.se = SqueezeExcite(cout) if se else nn.Identity()
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, cout, H', W'), or (B, cin, L) -> (B, cout, L')."""
        return self.pool(self.se(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """Depthwise kxk-bn-relu, optional SE, pointwise 1x1-bn-relu, identity shortcut when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, ...], stride: int, se: bool, residual: bool) -> None:
        super().__init__()
        self.dw = conv_bn(cin, cin, kernel, stride, groups=cin)
        self.se = SqueezeExcite(cin) if se else nn.Identity()
        self.pw = conv_bn(cin, cout, (1, 1))
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, cout, H', W')."""
        y = self.pw(self.se(self.dw(x)))
        return x + y if self.residual else y


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand-bn-relu (if expansion > 1), depthwise-bn-relu, SE, linear 1x1 project."""

    def __init__(
        self, cin: int, cout: int, kernel: tuple[int, ...], stride: int, expansion: int, se: bool, residual: bool
    ) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = conv_bn(cin, hidden, (1, 1)) if expansion != 1 else nn.Identity()
        self.dw = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.se = SqueezeExcite(hidden) if se else nn.Identity()
        self.project = conv_bn(hidden, cout, (1, 1), act=False)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, cout, H', W')."""
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class Head(nn.Module):
    """Global average pool, flatten, optional hidden linear + ReLU, dropout, linear classifier."""

    def __init__(self, cin: int, hidden: int, n_classes: int, dropout: float, spatial_dims: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool1d(1) if spatial_dims == 1 else nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.hidden = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True)) if hidden else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden or cin, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, ...) -> (B, n_classes) logits."""
        return self.classifier(self.dropout(self.hidden(self.flatten(self.pool(x)))))


def build_unit(unit: UnitInfo) -> nn.Module:
    """Build exactly the module of one unit, as it sits in the full model (same class and children).

    Args:
        unit: A unit from :func:`search_spaces.trace`.

    Returns:
        A freshly initialised module mapping ``(1, *unit.in_shape)`` to ``(1, *unit.out_shape)``.

    Example:
        >>> units = trace(spec, n_classes=10, input_shape=(1, 40, 101))
        >>> block = build_unit(units[3]).eval()  # export and time it alone
    """
    cin, cout = unit.in_shape[0], unit.out_shape[0]
    if unit.kind in ("stem", "conv"):
        return PlainConv(cin, cout, unit.kernel, unit.stride, unit.se, unit.pool)
    if unit.kind == "ds":
        return DepthwiseSeparable(cin, cout, unit.kernel, unit.stride, unit.se, unit.residual)
    if unit.kind == "ir":
        return InvertedResidual(cin, cout, unit.kernel, unit.stride, unit.expansion, unit.se, unit.residual)
    if unit.kind == "head":
        return Head(cin, unit.hidden, cout, unit.dropout, spatial_dims=len(unit.in_shape) - 1)
    raise ValueError(f"unknown unit kind '{unit.kind}'")


class SpecNet(nn.Module):
    """The network of an ArchSpec: ``head(blocks(stem(x)))``.

    Attributes:
        arch: The canonical string of the spec it was built from.
        stem: The first unit.
        blocks: One entry per block unit (a stage of depth 3 gives 3 entries).
        head: Pooling, optional hidden layer, dropout and classifier.
    """

    def __init__(self, arch: str, stem: nn.Module, blocks: list[nn.Module], head: nn.Module, waveform: bool) -> None:
        super().__init__()
        self.arch = arch
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head
        self.waveform = waveform

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) log-mel or (B, C, L) samples -> (B, n_classes) logits.

        A waveform model also takes (B, C, 1, L), the layout of ``Features.batch`` for raw samples.
        """
        if self.waveform and x.dim() == 4:
            x = x.squeeze(2)
        return self.head(self.blocks(self.stem(x)))


def build_network(arch: str, units: list[UnitInfo]) -> SpecNet:
    """Assemble a :class:`SpecNet` from a traced unit list (stem first, head last)."""
    modules = [build_unit(u) for u in units]
    return SpecNet(arch, modules[0], modules[1:-1], modules[-1], waveform=len(units[0].in_shape) == 2)
