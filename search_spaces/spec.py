"""ArchSpec: the architecture a genome decodes to, and its canonical string (the key of everything)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from common.errors import UserError

OPS_2D = ("c", "ds", "ir")  # conv-bn-relu, depthwise-separable, inverted residual (MobileNetV2)
OPS_1D = ("c1d",)  # conv1d-bn-relu-maxpool over raw samples

_LAYER_RE = re.compile(
    r"(?P<op>c1d|ds|ir|c)(?P<width>\d+)k(?P<kernel>\d+(?:x\d+)?)s(?P<stride>\d+)"
    r"(?:e(?P<expansion>\d+))?(?:r(?P<repeat>\d+))?(?:p(?P<pool>\d+))?(?P<se>se)?"
)
_HEAD_RE = re.compile(r"h(?P<width>\d+)d(?P<dropout>\d+)")


@dataclass(frozen=True)
class LayerSpec:
    """One stem or stage: ``repeat`` identical blocks, the first of which carries the stride.

    Attributes:
        op: ``c`` (conv-bn-relu), ``ds`` (depthwise-separable), ``ir`` (inverted residual) or
            ``c1d`` (conv1d-bn-relu-maxpool on waveforms).
        width: Output channels.
        kernel: ``(along mel bins, along frames)`` for 2D ops, ``(samples,)`` for ``c1d``.
        stride: Stride of the first block (both axes in 2D); later repeats use stride 1.
        repeat: Number of blocks in the stage.
        expansion: Hidden-width multiplier of ``ir`` blocks; 1 for every other op.
        se: Squeeze-and-excitation after the (depthwise) convolution.
        pool: Max-pool size and stride after a ``c1d`` layer; 1 means none (always 1 in 2D).
    """

    op: str
    width: int
    kernel: tuple[int, ...]
    stride: int = 1
    repeat: int = 1
    expansion: int = 1
    se: bool = False
    pool: int = 1

    def __str__(self) -> str:
        kernel = str(self.kernel[0]) if len(set(self.kernel)) == 1 else "x".join(map(str, self.kernel))
        text = f"{self.op}{self.width}k{kernel}s{self.stride}"
        if self.op == "ir":
            text += f"e{self.expansion}"
        if self.repeat != 1:
            text += f"r{self.repeat}"
        if self.op in OPS_1D:
            text += f"p{self.pool}"
        return text + ("se" if self.se else "")


@dataclass(frozen=True)
class ArchSpec:
    """A complete architecture of one search space; ``str(spec)`` is its canonical string.

    Canonical string grammar (tokens joined by ``-``; only letters, digits and ``-``, so the
    string is safe in file names, CSV cells and JSON keys)::

        arch    := layer ("-" layer)* "-" head        the first layer is the stem
        layer   := op WIDTH "k" kernel "s" STRIDE ["e" EXPANSION] ["r" REPEAT] ["p" POOL] ["se"]
        op      := "c" | "ds" | "ir"                   2D: conv-bn-relu, depthwise-separable,
                                                        inverted residual
                 | "c1d"                               1D: conv1d-bn-relu-maxpool (waveforms)
        kernel  := K                                    square K x K in 2D, K taps in 1D
                 | KH "x" KW                            2D only: KH mel bins x KW frames
        head    := "h" HIDDEN "d" DROPOUT_PERCENT       HIDDEN 0 = no hidden layer

    ``e`` is written for every ``ir`` layer and for no other; ``r`` only when REPEAT > 1; ``p``
    for every ``c1d`` layer and for no other; ``se`` only when squeeze-excitation is on. Numbers
    have no leading zeros. Each spec has exactly one string, so the string is a key: parsing
    refuses anything but the canonical form and names the canonical spelling.

    Examples:
        ``c16k3s2-ds32k3s1r2-ir64k5s2e4se-h64d20``: stem 16 channels 3x3 stride 2; two
        depthwise-separable blocks of 32; one inverted residual of 64, kernel 5, stride 2,
        expansion 4, with SE; hidden layer of 64, dropout 0.2.
        ``c1d32k80s16p4-c1d32k3s1p4-h0d10``: two conv1d layers on raw samples, no hidden layer.

    Attributes:
        space: Name of the search space the spec belongs to (not part of the string; the ops of
            different spaces do not overlap, so strings of different spaces never collide).
        layers: The stem followed by the stages.
        head_width: Hidden units between global pooling and the classifier; 0 means none.
        dropout: Dropout probability before the classifier.
    """

    space: str
    layers: tuple[LayerSpec, ...]
    head_width: int = 0
    dropout: float = 0.0

    def __str__(self) -> str:
        head = f"h{self.head_width}d{round(self.dropout * 100)}"
        return "-".join([*(str(layer) for layer in self.layers), head])

    @property
    def stem(self) -> LayerSpec:
        """The first layer."""
        return self.layers[0]

    @property
    def stages(self) -> tuple[LayerSpec, ...]:
        """Every layer after the stem."""
        return self.layers[1:]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON (checkpoints, journals): the space and the canonical string."""
        return {"space": self.space, "arch": str(self)}


def parse_arch(text: str, space: str) -> ArchSpec:
    """Parse a canonical string (grammar in :class:`ArchSpec`) without checking the space's choices.

    Args:
        text: The canonical string.
        space: Space name stored in the returned spec.

    Returns:
        The spec, such that ``str(spec) == text``.

    Raises:
        UserError: A token does not follow the grammar, or the string is not in canonical form.
    """
    tokens = text.split("-")
    if len(tokens) < 2:
        raise UserError(f"arch string '{text}' needs at least a stem and a head token (e.g. 'c16k3s2-h0d0')")
    layers = tuple(_parse_layer(token, text) for token in tokens[:-1])
    head = _HEAD_RE.fullmatch(tokens[-1])
    if head is None:
        raise UserError(f"arch string '{text}' must end with a head token 'h<hidden>d<dropout%>', got '{tokens[-1]}'")
    spec = ArchSpec(space, layers, int(head["width"]), int(head["dropout"]) / 100)
    if str(spec) != text:
        raise UserError(f"arch string '{text}' is not in canonical form; write it as '{spec}'")
    return spec


def _parse_layer(token: str, text: str) -> LayerSpec:
    m = _LAYER_RE.fullmatch(token)
    if m is None:
        raise UserError(
            f"bad layer token '{token}' in arch string '{text}': expected <op><width>k<kernel>s<stride>"
            f"[e<expansion>][r<repeat>][p<pool>][se] with op one of {', '.join(OPS_2D + OPS_1D)}"
        )
    op = m["op"]
    kernel = tuple(int(k) for k in m["kernel"].split("x"))
    if op in OPS_2D and len(kernel) == 1:
        kernel = kernel * 2
    return LayerSpec(
        op=op,
        width=int(m["width"]),
        kernel=kernel,
        stride=int(m["stride"]),
        repeat=int(m["repeat"] or 1),
        expansion=int(m["expansion"] or 1),
        se=m["se"] is not None,
        pool=int(m["pool"] or 1),
    )
