"""ONNX graphs of ops in network context, built directly (about 1 ms, against 30-250 ms for torch export).

These graphs are what :mod:`latency_tables.op_models` defines with torch modules, written as the
ONNX the torch exporter produces in eval mode: BatchNorm folded into the convolution's bias,
ReLU and HardSigmoid(1/6, 1/2) as separate nodes (ORT fuses them), Linear as ``Gemm(transB=1)``,
dropout gone. ``tests/test_latency_graphs.py`` checks, for every op kind, that ORT optimises
both to the same node sequence. Weights are random (timing does not depend on their values).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from latency_tables.keys import OpKey
from search_spaces.units import se_channels

OPSET = 17


class _Graph:
    """A small graph under construction: nodes, initializers, inputs and outputs."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[str] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def input(self, shape: tuple[int, ...]) -> str:
        name = f"input{len(self.inputs)}"
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, *shape]))
        return name

    def weight(self, shape: tuple[int, ...]) -> str:
        name = self.name("w")
        scale = 1.0 / np.sqrt(max(1, int(np.prod(shape[1:]))))
        values = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, kernel: tuple[int, ...], stride: int = 1, groups: int = 1) -> str:
        w = self.weight((cout, cin // groups, *kernel))
        b = self.weight((cout,))
        pads = [k // 2 for k in kernel] * 2
        return self.node(
            "Conv", [x, w, b], kernel_shape=list(kernel), strides=[stride] * len(kernel), pads=pads, group=groups
        )

    def act(self, x: str, act: str) -> str:
        return self.node("Relu", [x]) if act == "relu" else x

    def producer(self, x: str, channels: int, rank: int) -> str:
        return self.conv(x, channels, channels, (1,) * rank, groups=channels)

    def model(self) -> bytes:
        outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in self.outputs]
        graph = helper.make_graph(self.nodes, "op", self.inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model.SerializeToString()


def _op(g: _Graph, op: OpKey, x: str) -> str:
    """Append the op itself after tensor ``x``; returns its output."""
    cin, rank = op.in_shape[0], len(op.in_shape) - 1
    if op.kind in ("stem", "conv"):
        return g.act(g.conv(x, cin, op.out_channels, op.kernel, op.stride), op.act)
    if op.kind == "dw":
        return g.act(g.conv(x, cin, cin, op.kernel, op.stride, groups=cin), op.act)
    if op.kind == "pw":
        return g.act(g.conv(x, cin, op.out_channels, (1,) * rank), op.act)
    if op.kind == "se":
        squeeze = se_channels(cin)
        pooled = g.node("GlobalAveragePool", [x])
        hidden = g.act(g.conv(pooled, cin, squeeze, (1,) * rank), "relu")
        gate = g.node("HardSigmoid", [g.conv(hidden, squeeze, cin, (1,) * rank)], alpha=1.0 / 6.0, beta=0.5)
        return g.node("Mul", [x, gate])
    if op.kind == "head":
        flat = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
        if op.hidden:
            flat = g.node("Relu", [_gemm(g, flat, cin, op.hidden)])
        return _gemm(g, flat, op.hidden or cin, op.out_channels)
    if op.kind == "pool":
        return g.node("MaxPool", [x], kernel_shape=[op.pool], strides=[op.pool])
    raise ValueError(f"op kind '{op.kind}' has no single-input graph")


def _gemm(g: _Graph, x: str, n_in: int, n_out: int) -> str:
    return g.node("Gemm", [x, g.weight((n_out, n_in)), g.weight((n_out,))], alpha=1.0, beta=1.0, transB=1)


def context_graphs(op: OpKey) -> tuple[bytes, str | None, bytes | None]:
    """(model, reference key, reference) ONNX for ``op`` in context; see :mod:`latency_tables.op_models`."""
    shape, rank = op.in_shape, len(op.in_shape) - 1
    dims = "x".join(map(str, shape))
    model, ref = _Graph(), _Graph()
    if op.kind == "stem":
        model.outputs = [_op(model, op, model.input(shape))]
        return model.model(), None, None
    if op.kind == "se":
        for g, with_op in ((model, True), (ref, False)):
            x = g.producer(g.input(shape), shape[0], rank)
            x = _op(g, op, x) if with_op else x
            g.outputs = [g.producer(x, shape[0], rank)]
        return model.model(), f"ref_pq_{dims}", ref.model()
    if op.kind == "add" or (op.kind == "pw" and op.fused_sum):
        x_shape = (op.out_channels or shape[0], *op.out_shape[1:])
        relu = op.kind == "add"
        tag = "ref_sum2relu" if relu else "ref_sum2"
        for g, with_op in ((model, True), (ref, False)):
            a = g.producer(g.input(shape), shape[0], rank)
            b = g.producer(g.input(x_shape), x_shape[0], rank)
            if relu:
                a, b = g.node("Relu", [a]), g.node("Relu", [b])
            if with_op:
                a = _op(g, op, a) if op.kind == "pw" else a
                g.outputs = [g.node("Add", [a, b])]
            else:
                g.outputs = [a, b]
        return model.model(), f"{tag}_{dims}_{'x'.join(map(str, x_shape))}", ref.model()
    for g, with_op in ((model, True), (ref, False)):
        x = g.producer(g.input(shape), shape[0], rank)
        g.outputs = [_op(g, op, x) if with_op else x]
    return model.model(), f"ref_p_{dims}", ref.model()
