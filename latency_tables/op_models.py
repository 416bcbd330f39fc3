"""Torch modules that put one op in the context it has inside a network, and their references.

The cost of an op is ``T(model) - T(reference)`` (see :mod:`latency_tables.layout`):

* ``stem``: the op alone reads the model input (no producer); there is no reference, so its
  time also carries the model's per-call overhead, which every network pays exactly once.
* one-input ops: producer -> op, minus the producer alone.
* ``se``: producer -> SE -> consumer, minus producer -> consumer. SE leaves the blocked layout
  (its multiply is not a blocked kernel), so the conversions back into the layout for the next
  convolution belong to it.
* ``pw`` with a fused sum: ``pw(P1(z)) + P2(x)``, minus ``(P1(z), P2(x))``.
* ``add`` (an unfusable residual add, after a ReLU): ``relu(P1(a)) + relu(P2(b))`` minus
  ``(relu(P1(a)), relu(P2(b)))``. Both branches end in a fused activation, so, as in the
  network (where the block input also feeds the block), ORT cannot fold the add into a producer.

The ops are built from the search space's own modules (:mod:`search_spaces.blocks`), so a table
times exactly what the built models run.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from latency_tables.int8_graphs import qdq_graph
from latency_tables.keys import OpKey
from latency_tables.layout import prepare_in_network, prepare_onnx, producer
from latency_tables.onnx_graphs import context_graphs
from search_spaces.blocks import Head, SqueezeExcite, conv_bn


def op_module(op: OpKey) -> nn.Module:
    """The module of one op on its own (randomly initialised)."""
    cin, rank = op.in_shape[0], len(op.in_shape) - 1
    if op.kind in ("stem", "conv"):
        return conv_bn(cin, op.out_channels, op.kernel, op.stride, act=op.act == "relu")
    if op.kind == "dw":
        return conv_bn(cin, cin, op.kernel, op.stride, groups=cin, act=op.act == "relu")
    if op.kind == "pw":
        return conv_bn(cin, op.out_channels, (1,) * rank, act=op.act == "relu")
    if op.kind == "se":
        return SqueezeExcite(cin)
    if op.kind == "head":
        return Head(cin, op.hidden, op.out_channels, dropout=0.0, spatial_dims=rank)
    if op.kind == "pool":
        return nn.MaxPool1d(op.pool)
    raise ValueError(f"op kind '{op.kind}' has no single-input module")


class _SumContext(nn.Module):
    """``op(P1(z)) + P2(x)``, ReLU after both producers if ``relu`` (or both branches, for the reference)."""

    def __init__(self, op: nn.Module | None, z_channels: int, x_channels: int, rank: int, relu: bool) -> None:
        super().__init__()
        self.p1 = producer(z_channels, rank)
        self.p2 = producer(x_channels, rank)
        self.op = op
        self.relu = relu

    def forward(self, z: Tensor, x: Tensor):
        """Two inputs in, the sum (or the two producer outputs) out."""
        a, b = self.p1(z), self.p2(x)
        if self.relu:
            a, b = a.relu(), b.relu()
        if self.op is None:
            return a, b
        return self.op(a) + b


@dataclass(frozen=True)
class MeasuredGraphs:
    """The prepared ONNX graph of an op in context, and the key and graph of its reference.

    ``reference_key`` is shared by every op with the same context (e.g. the producer on one
    input shape), so a collection measures each reference once.
    """

    model: bytes
    reference_key: str | None
    reference: bytes | None


def in_context(op: OpKey) -> tuple[nn.Module, tuple[tuple[int, ...], ...], str | None, nn.Module | None]:
    """(model, input shapes, reference key, reference module) for timing ``op`` in network context."""
    shape, rank = op.in_shape, len(op.in_shape) - 1
    if op.kind == "stem":
        return op_module(op), (shape,), None, None
    if op.kind == "se":
        q = producer(shape[0], rank)
        p = producer(shape[0], rank)
        model = nn.Sequential(p, op_module(op), q)
        return model, (shape,), f"ref_pq_{_dims(shape)}", nn.Sequential(producer(shape[0], rank), q)
    if op.kind in ("pw", "add") and (op.fused_sum or op.kind == "add"):
        z = shape
        x = (op.out_channels or shape[0], *op.out_shape[1:])
        relu = op.kind == "add"
        inner = op_module(op) if op.kind == "pw" else None
        model = _SumContext(inner or nn.Identity(), z[0], x[0], rank, relu)
        ref = _SumContext(None, z[0], x[0], rank, relu)
        tag = "ref_sum2relu" if relu else "ref_sum2"
        return model, (z, x), f"{tag}_{_dims(z)}_{_dims(x)}", ref
    model = nn.Sequential(producer(shape[0], rank), op_module(op))
    return model, (shape,), f"ref_p_{_dims(shape)}", producer(shape[0], rank)


def prepare(op: OpKey, with_reference: bool = True, precision: str = "fp32") -> MeasuredGraphs:
    """Prepared graphs for timing ``op``: built directly as ONNX, ORT-optimised, boundaries stripped.

    The reference is prepared only if asked for (a collection measures each reference once).
    At ``int8`` both graphs are first written as the project's static recipe quantizes them
    (:mod:`latency_tables.int8_graphs`); the stem keeps
    the model input's quantization and the head its output's dequantization, which every model
    pays once (see :mod:`latency_tables.precision`).
    """
    model, ref_key, ref = context_graphs(op)
    if precision == "int8":
        model, ref = qdq_graph(model), (qdq_graph(ref) if with_reference and ref is not None else None)
    ref_bytes = prepare_onnx(ref) if (with_reference and ref is not None) else None
    return MeasuredGraphs(prepare_onnx(model, inputs=op.kind != "stem", outputs=op.kind != "head"), ref_key, ref_bytes)


def reference_key(op: OpKey) -> str | None:
    """The key of ``op``'s context (None: the stem has none), without preparing any graph."""
    return context_graphs(op)[1]


def prepare_torch(op: OpKey, with_reference: bool = True) -> MeasuredGraphs:
    """Like :func:`prepare` but exported from the torch modules (the definition; slow, for tests)."""
    model, shapes, ref_key, ref = in_context(op)
    ref_bytes = prepare_in_network(ref, *shapes) if (with_reference and ref is not None) else None
    return MeasuredGraphs(prepare_in_network(model, *shapes), ref_key, ref_bytes)


def _dims(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)
