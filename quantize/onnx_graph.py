"""Reading and rewriting ONNX graphs for quantization: inputs and outputs, layers, which weights are INT8.

Two rewrites make ``nodes_to_exclude`` mean what it says, i.e. the node computes in fp32 on fp32
inputs with fp32 weights, in the file *and* in the graph ONNX Runtime runs:

- Before quantization every node gets its own initializers. The TorchScript exporter
  de-duplicates equal tensors (an untrained network's folded BatchNorm biases are all zeros), and
  ORT's QDQ quantizer would put the quantized bias of one node in front of an excluded one.
- After quantization an excluded node reads its activations before their QuantizeLinear/
  DequantizeLinear pair instead of after it. Otherwise ORT (1.2x's ``WeightBiasQuantization``
  graph transformer, on by default) sees a Conv or Gemm with a dequantized input and fp32
  weights feeding a QuantizeLinear and quantizes its weights itself, per tensor, at session start.
  The removable activations (Relu, Clip) that feed an excluded node are excluded too, so that
  the quantizer keeps them as nodes instead of folding them into the QuantizeLinear after them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization.shape_inference import quant_pre_process

# Nodes whose quantization changes the arithmetic (integer kernels, re-quantized outputs), i.e.
# the layers worth keeping in fp32. Static quantization also wraps value-preserving ops (Relu,
# MaxPool, Flatten, Reshape, ...) in QuantizeLinear/DequantizeLinear, but keeping those fp32 changes nothing.
LAYER_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "GlobalAveragePool", "AveragePool")
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
REMOVABLE_ACTIVATIONS = ("Relu", "Clip")  # ORT's quantizer folds these into the QuantizeLinear after them
_REMOVABLE_WHEN_UNREAD = ("QuantizeLinear", "DequantizeLinear", "Identity")


@dataclass(frozen=True)
class GraphIO:
    """The first input and output of a classifier graph.

    Attributes:
        input_name: Name of the graph input.
        input_shape: Per-example input shape (axis 0 left out).
        batch_size: The fixed batch size of axis 0, or None when it is dynamic.
        output_name: Name of the first graph output (the logits).
    """

    input_name: str
    input_shape: tuple[int, ...]
    batch_size: int | None
    output_name: str


def graph_io(path: str | os.PathLike) -> GraphIO:
    """The :class:`GraphIO` of an ONNX file.

    Raises:
        ValueError: A non-batch input axis has no fixed size.
    """
    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    graph_input = next(i for i in graph.input if i.name not in initializers)
    dims = graph_input.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if not shape or any(d is None for d in shape[1:]):
        raise ValueError(f"{path}: input '{graph_input.name}' needs a fixed size on every axis but the first: {shape}")
    return GraphIO(graph_input.name, tuple(shape[1:]), shape[0], graph.output[0].name)


def preprocess(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """ORT's pre-processing for quantization (shape inference, graph optimisation), then unshared initializers.

    Nodes without a name are named ``<op_type>_<index>`` so that they can be excluded by name.
    """
    quant_pre_process(os.fspath(fp32_path), os.fspath(out_path))
    model = onnx.load(os.fspath(out_path))
    _name_nodes(model.graph)
    _unshare_initializers(model.graph)
    onnx.save(model, os.fspath(out_path))


def layer_nodes(path: str | os.PathLike, op_types: tuple[str, ...] = LAYER_OP_TYPES) -> list[str]:
    """Names of the nodes of ``op_types`` in graph order."""
    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in op_types]


def node_names(path: str | os.PathLike) -> list[str]:
    """Names of all nodes in graph order."""
    return [n.name for n in onnx.load(os.fspath(path), load_external_data=False).graph.node]


def weight_precision(path: str | os.PathLike) -> dict[str, str]:
    """``{node name: "int8" | "fp32"}`` for every Conv/Gemm/MatMul whose weight is a constant.

    A weight is INT8 when it reaches the node through a ``DequantizeLinear`` of an integer
    initializer (QDQ format) and fp32 when the node reads a float initializer directly.
    """
    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    out = {}
    for node in graph.node:
        if node.op_type not in WEIGHTED_OP_TYPES or len(node.input) < 2:
            continue
        weight = node.input[1]
        if weight in initializers:
            out[node.name] = "fp32" if initializers[weight].data_type == onnx.TensorProto.FLOAT else "int8"
        elif weight in producers and producers[weight].op_type == "DequantizeLinear":
            out[node.name] = "int8"
    return out


def feeding_activations(path: str | os.PathLike, nodes: Sequence[str]) -> list[str]:
    """The Relu/Clip nodes whose output one of ``nodes`` reads (to be excluded along with them)."""
    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    producers = {out: node for node in graph.node for out in node.output}
    wanted = set(nodes)
    found = []
    for node in graph.node:
        if node.name not in wanted:
            continue
        for name in node.input:
            producer = producers.get(name)
            if producer is not None and producer.op_type in REMOVABLE_ACTIVATIONS and producer.name not in found:
                found.append(producer.name)
    return found


def read_float_inputs(path: str | os.PathLike, nodes: Sequence[str]) -> None:
    """Make ``nodes`` of a QDQ model read each fake-quantized activation ``DQ(Q(t))`` as ``t``, in place.

    QuantizeLinear/DequantizeLinear nodes left without readers, and initializers no node reads
    any more, are removed.
    """
    model = onnx.load(os.fspath(path))
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    wanted = set(nodes)
    for node in graph.node:
        if node.name not in wanted:
            continue
        for k, name in enumerate(node.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[k] = q.input[0]
    _drop_dead_qdq(graph)
    onnx.save(model, os.fspath(path))


def fold_weight_quantizers(model: bytes) -> bytes:
    """Replace every QuantizeLinear of a constant (a weight) by its integer result, as an initializer.

    The TorchScript exporter writes a fake-quantized weight as ``DequantizeLinear(QuantizeLinear(w))``
    with ``w`` in float; folding stores it as INT8, which is what makes the file small. The values
    are exactly ONNX's QuantizeLinear: ``saturate(round_half_to_even(w / scale) + zero_point)``,
    per axis when the scale is a vector.
    """
    proto = onnx.ModelProto.FromString(model)
    graph = proto.graph
    initializers = {i.name: i for i in graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in initializers}
    for node in graph.node:  # the exporter shares equal constants (zero points) through Identity nodes
        for k, name in enumerate(node.input):
            if name in aliases:
                node.input[k] = aliases[name]
    for node in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
        if len(node.input) < 3 or not all(name in initializers for name in node.input[:3]):
            continue
        w, scale, zero_point = (numpy_helper.to_array(initializers[name]) for name in node.input[:3])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * w.ndim
            shape[axis] = scale.size
            scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
        info = np.iinfo(zero_point.dtype)
        q = np.clip(np.rint(w / scale) + zero_point.astype(np.int64), info.min, info.max).astype(zero_point.dtype)
        graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
        graph.node.remove(node)
    _drop_dead_qdq(graph)
    return proto.SerializeToString()


def _drop_dead_qdq(graph: onnx.GraphProto) -> None:
    """Remove Q/DQ/Identity nodes nobody reads (repeatedly), then initializers nobody reads."""
    while True:
        read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in _REMOVABLE_WHEN_UNREAD and n.output[0] not in read]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for initializer in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(initializer)


def _name_nodes(graph: onnx.GraphProto) -> None:
    taken = {n.name for n in graph.node}
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _unshare_initializers(graph: onnx.GraphProto) -> None:
    """Give every node that reads an initializer also read by another node its own copy."""
    initializers = {i.name: i for i in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input if name in initializers)
    seen: Counter[str] = Counter()
    for node in graph.node:
        for k, name in enumerate(node.input):
            if uses.get(name, 0) < 2:
                continue
            seen[name] += 1
            if seen[name] == 1:
                continue  # the first reader keeps the original
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[name])
            copy.name = f"{name}__{node.name}_{k}"
            graph.initializer.append(copy)
            node.input[k] = copy.name
