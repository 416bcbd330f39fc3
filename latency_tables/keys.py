"""Op keys: the fused units ONNX Runtime actually runs, and how a spec decomposes into them.

ORT's CPU graph optimiser folds BatchNorm into the preceding convolution and fuses the following
activation (ReLU, HardSigmoid) into it; on x86 it runs the convolutions in its blocked NCHWc
layout and fuses a residual add that follows a linear 1x1 convolution into that convolution
(a ``Sum`` input). The *op* is therefore one fused convolution, not one torch layer. Checked
against ORT's optimised graphs (``tests/test_latency_keys.py``):

==========  ============================================================================
op kind     fused runtime node(s)
==========  ============================================================================
``stem``    the first convolution (+BN+ReLU); reads the model input as is
``conv``    a full k x k convolution (+BN+ReLU)
``dw``      a depthwise k x k convolution (+BN+ReLU)
``pw``      a 1x1 convolution (+BN), ``relu`` or ``linear``; ``sum``: residual add fused in
``add``     a separate residual add (after a ReLU, so it cannot be fused)
``se``      squeeze-excitation: pool, two 1x1 convs (ReLU, HardSigmoid), multiply, and the
            layout conversions it forces around itself
``head``    global average pool, flatten, [linear+ReLU], linear classifier
``pool``    a 1D max-pool (wave1d)
==========  ============================================================================

Key grammar (one string, the table's index)::

    key    := kind "_" IN ["_" OUT] {"_" attr}
    IN     := dims of the op's input, joined by "x" (channels first)   e.g. 16x20x51
    OUT    := output channels (conv-like ops), or "c" N classes (head)
    attr   := "k" kernel | "s" stride | "e" ... | relu | linear | sum | "h" hidden | "p" pool

Example: ``pw_64x20x51_16_linear_sum`` is the projection of an inverted residual block with its
shortcut fused in, on a 64-channel 20x51 map.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from search_spaces import ArchSpec, SearchSpace, UnitInfo

OP_KINDS = ("stem", "conv", "dw", "pw", "add", "se", "head", "pool")


@dataclass(frozen=True)
class OpKey:
    """One fused runtime op with everything that affects its cost.

    Attributes:
        kind: One of :data:`OP_KINDS`.
        in_shape: Input shape without batch, channels first: (C, H, W) or (C, L).
        out_channels: Output channels (conv-like ops), the number of classes (head), else 0.
        kernel: Kernel per spatial axis (conv-like ops), else ().
        stride: Convolution stride (1 for ops without one).
        act: ``relu`` or ``linear`` (conv-like ops), else "".
        fused_sum: A residual add fused into this 1x1 convolution.
        hidden: Hidden units of the head (0: none).
        pool: Max-pool size (``pool`` ops).
    """

    kind: str
    in_shape: tuple[int, ...]
    out_channels: int = 0
    kernel: tuple[int, ...] = ()
    stride: int = 1
    act: str = ""
    fused_sum: bool = False
    hidden: int = 0
    pool: int = 1

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"unknown op kind '{self.kind}'; kinds: {', '.join(OP_KINDS)}")
        rank = len(self.in_shape) - 1
        conv_like = self.kind in ("stem", "conv", "dw")
        if (conv_like and len(self.kernel) != rank) or (not conv_like and self.kernel):
            raise ValueError(
                f"op {self.kind} on a {rank}D input needs {'a ' + str(rank) + 'D' if conv_like else 'no'} kernel"
            )
        if (conv_like or self.kind == "pw") != bool(self.act):
            raise ValueError(f"op {self.kind}: activation (relu/linear) required exactly for conv-like ops")
        if self.kind in ("stem", "conv", "pw", "head") and self.out_channels < 1:
            raise ValueError(f"op {self.kind} needs a positive output channel/class count")

    @property
    def key(self) -> str:
        """The canonical key string (see the module docstring)."""
        return _format(self, self.in_shape, self.out_channels, self.hidden)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Output shape without batch."""
        if self.kind == "head":
            return (self.out_channels,)
        channels = self.out_channels or self.in_shape[0]
        if self.kind == "pool":
            return (channels, self.in_shape[1] // self.pool)
        kernel = self.kernel or (1,) * (len(self.in_shape) - 1)
        spatial = tuple(
            (n + 2 * (k // 2) - k) // self.stride + 1 for n, k in zip(self.in_shape[1:], kernel, strict=True)
        )
        return (channels, *spatial)

    @property
    def channel_fields(self) -> tuple[int, ...]:
        """The channel counts interpolation may vary: in/out channels (head: in, classes[, hidden])."""
        if self.kind in ("stem", "conv", "pw"):
            return (self.in_shape[0], self.out_channels)
        if self.kind == "head":
            return (self.in_shape[0], self.out_channels, *((self.hidden,) if self.hidden else ()))
        return (self.in_shape[0],)

    @property
    def blocked_fields(self) -> tuple[bool, ...]:
        """Per channel field, whether the runtime pads it to its channel block.

        The convolutions (and the head's global pooling) run in the blocked layout; the head's
        hidden and classifier layers are plain ``Gemm`` nodes on a flat vector, so its hidden width
        and class count are never padded.
        """
        if self.kind == "head":
            return (True, *(False,) * (len(self.channel_fields) - 1))
        return (True,) * len(self.channel_fields)

    @property
    def family(self) -> str:
        """The key with channel counts blanked (0): keys of one family differ only in channels."""
        return _format(self, (0, *self.in_shape[1:]), 0, 1 if self.hidden else 0)


def _format(op: OpKey, in_shape: tuple[int, ...], out_channels: int, hidden: int) -> str:
    parts = [op.kind, _dims(in_shape)]
    if op.kind in ("stem", "conv", "pw"):
        parts.append(str(out_channels))
    if op.kind == "head":
        parts.append(f"c{out_channels}")
    if op.kernel:
        parts += [f"k{_dims(op.kernel)}", f"s{op.stride}"]
    if op.act:
        parts.append(op.act)
    if op.fused_sum:
        parts.append("sum")
    if hidden:
        parts.append(f"h{hidden}")
    if op.kind == "pool":
        parts.append(f"p{op.pool}")
    return "_".join(parts)


_KEY_RE = re.compile(
    r"^(?P<kind>[a-z]+)_(?P<in>\d+(?:x\d+)*)(?:_(?P<out>\d+))?(?:_c(?P<ncls>\d+))?"
    r"(?:_k(?P<k>\d+(?:x\d+)*)_s(?P<s>\d+))?(?:_(?P<act>relu|linear))?(?P<sum>_sum)?"
    r"(?:_h(?P<hidden>\d+))?(?:_p(?P<pool>\d+))?$"
)


def parse_op_key(text: str) -> OpKey:
    """Inverse of :attr:`OpKey.key`.

    Raises:
        ValueError: The text is not a valid key (the message quotes it).
    """
    m = _KEY_RE.match(text)
    if not m or m["kind"] not in OP_KINDS:
        raise ValueError(f"'{text}' is not a valid op key (see latency_tables.keys for the grammar)")
    out = int(m["out"] or m["ncls"] or 0)
    try:
        op = OpKey(
            kind=m["kind"],
            in_shape=tuple(int(v) for v in m["in"].split("x")),
            out_channels=out,
            kernel=tuple(int(v) for v in m["k"].split("x")) if m["k"] else (),
            stride=int(m["s"] or 1),
            act=m["act"] or "",
            fused_sum=bool(m["sum"]),
            hidden=int(m["hidden"] or 0),
            pool=int(m["pool"] or 1),
        )
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid op key: {exc}") from None
    if op.key != text:
        raise ValueError(f"'{text}' is not a canonical op key (canonical form: '{op.key}')")
    return op


def _dims(values: Sequence[int]) -> str:
    return "x".join(str(v) for v in values)


def unit_ops(unit: UnitInfo) -> list[OpKey]:
    """The fused runtime ops of one unit, in execution order."""
    if unit.kind == "head":
        return [OpKey("head", unit.in_shape, unit.out_shape[0], hidden=unit.hidden)]
    cin, spatial = unit.in_shape[0], unit.in_shape[1:]
    cout, out_spatial = unit.out_shape[0], unit.out_shape[1:]
    k, s = unit.kernel, unit.stride
    if unit.kind in ("stem", "conv"):
        if len(spatial) == 1:  # 1D conv, then an optional max-pool on the conv output
            n_conv = (spatial[0] + 2 * (k[0] // 2) - k[0]) // s + 1
            ops = [OpKey(unit.kind, unit.in_shape, cout, k, s, "relu")]
            return ops + ([OpKey("pool", (cout, n_conv), pool=unit.pool)] if unit.pool > 1 else [])
        ops = [OpKey(unit.kind, unit.in_shape, cout, k, s, "relu")]
        return ops + ([OpKey("se", (cout, *out_spatial))] if unit.se else [])
    if unit.kind == "ds":
        ops = [OpKey("dw", unit.in_shape, kernel=k, stride=s, act="relu")]
        ops += [OpKey("se", (cin, *out_spatial))] if unit.se else []
        ops.append(OpKey("pw", (cin, *out_spatial), cout, act="relu"))
        return ops + ([OpKey("add", (cout, *out_spatial))] if unit.residual else [])
    if unit.kind == "ir":
        hidden = cin * unit.expansion
        ops = [OpKey("pw", unit.in_shape, hidden, act="relu")] if unit.expansion != 1 else []
        ops.append(OpKey("dw", (hidden, *spatial), kernel=k, stride=s, act="relu"))
        ops += [OpKey("se", (hidden, *out_spatial))] if unit.se else []
        return [*ops, OpKey("pw", (hidden, *out_spatial), cout, act="linear", fused_sum=unit.residual)]
    raise ValueError(f"unit kind '{unit.kind}' has no op decomposition")


def spec_ops(space: SearchSpace, spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> list[OpKey]:
    """Walk a spec stem -> blocks -> head into its list of op keys (in execution order)."""
    return [op for unit in space.trace(spec, n_classes, input_shape) for op in unit_ops(unit)]


def space_ops(space: SearchSpace, n_classes: int, input_shape: Sequence[int]) -> set[OpKey]:
    """Every op key any spec of ``space`` can emit on ``input_shape`` (from the exact unit catalog).

    The catalog walk takes seconds for ``mel2d`` (hundreds of thousands of units); it is computed
    once per process for each (space class, name, classes, input shape).
    """
    shape = tuple(int(d) for d in input_shape)
    return set(_cached_space_ops((type(space), space.name, int(n_classes), shape), space))


_SPACE_OPS: dict[tuple, frozenset[OpKey]] = {}


def _cached_space_ops(key: tuple, space: SearchSpace) -> frozenset[OpKey]:
    if key not in _SPACE_OPS:
        _, _, n_classes, shape = key
        _SPACE_OPS[key] = frozenset(op for unit in space.unit_catalog(n_classes, shape) for op in unit_ops(unit))
    return _SPACE_OPS[key]


__all__ = ["OP_KINDS", "OpKey", "parse_op_key", "space_ops", "spec_ops", "unit_ops"]
