"""Time a unit the way it runs inside a whole network: optimised, with boundary layout reorders stripped.

On x86, ONNX Runtime's NCHWc transformer runs a whole CNN in a blocked channel layout; a unit
exported alone instead pays a ``ReorderInput`` at its input and a ``ReorderOutput`` at its
output, and a residual block alone even adds in plain NCHW behind an extra reorder (its input
is both a graph input and an operand of the add). Summing such standalone timings over-predicts:
in a feasibility study on small audio CNNs (onnxruntime 1.31, one thread), removing these
boundary reorders from the per-block timings (on top of removing the per-call overhead) took the
share of models predicted within +-10 % from about 50 % to 86 %.

The fix here: the unit is measured behind a cheap *producer* (a depthwise 1x1 convolution on
its input channels), so ORT lays the unit out exactly as inside a network; the graph is
optimised once by ORT (``ORT_ENABLE_ALL``), and the layout conversions at the graph boundary
(``ReorderInput`` fed by a graph input, ``ReorderOutput`` feeding a graph output) are removed,
so the model takes and returns blocked tensors. The optimised graph is then run with
optimisations disabled. The unit's cost is the time of producer+unit minus the time of the
producer alone, which also cancels the per-call overhead of ``session.run``. Where the runtime
has no such layout (e.g. ARM builds), nothing is stripped and the method still holds.
"""

from __future__ import annotations

import os
import tempfile

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from torch import nn

from common.onnx_export import export_onnx  # re-exported: callers import it from here too
from latency_tables.ort_timing import make_session, random_feeds, session_options

REORDER_IN = "ReorderInput"
REORDER_OUT = "ReorderOutput"


def optimize_onnx(model: bytes, threads: int = 1) -> onnx.ModelProto:
    """The graph ONNX Runtime actually runs for ``model`` (``ORT_ENABLE_ALL``) on this machine."""
    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(threads, "all")
        so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath)


BOUNDARY_IN = (REORDER_IN, "QuantizeLinear", "Transpose")  # conversions an op's input goes through alone
BOUNDARY_OUT = (REORDER_OUT, "Transpose", "DequantizeLinear")  # and its output


def strip_boundaries(model: onnx.ModelProto, inputs: bool = True, outputs: bool = True) -> onnx.ModelProto:
    """Remove the conversions at the graph boundary that an op inside a network does not pay.

    At the inputs, chains of ``ReorderInput`` (fp32: into the blocked layout), ``QuantizeLinear``
    and ``Transpose`` (INT8: into uint8 NHWC) that start at a graph input; at the outputs, chains
    of ``ReorderOutput``, ``Transpose`` and ``DequantizeLinear`` that end at a graph output.

    Args:
        model: An ORT-optimised graph (see :func:`optimize_onnx`); it is not modified.
        inputs: Strip at the inputs (False for an op that reads the model input, the stem).
        outputs: Strip at the outputs (False for an op that makes the model output, the head).

    Returns:
        A copy whose inputs are the tensors the removed input conversions produced (with their
        concrete shapes and element types) and whose outputs are the tensors the removed output
        conversions consumed. Unchanged if there is nothing to strip.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    while inputs:
        names = {i.name: i for i in graph.input}
        heads = [n for n in graph.node if n.op_type in BOUNDARY_IN and n.input[0] in names
                 and _only_reader(graph, n.input[0], n)]  # fmt: skip
        if not heads:
            break
        made = _probe(model, heads)
        for node in heads:
            graph.node.remove(node)
            graph.input.remove(names[node.input[0]])
            elem, shape = made[node.output[0]]
            graph.input.append(helper.make_tensor_value_info(node.output[0], elem, shape))
    while outputs:
        names = {o.name: o for o in graph.output}
        tails = [n for n in graph.node if n.op_type in BOUNDARY_OUT and n.output[0] in names]
        if not tails:
            break
        for node in tails:
            graph.node.remove(node)
            elem = _input_type(graph, node, names[node.output[0]].type.tensor_type.elem_type)
            graph.output.remove(names[node.output[0]])
            graph.output.append(helper.make_tensor_value_info(node.input[0], elem, None))
    _drop_unused_initializers(graph)
    return model


def _only_reader(graph: onnx.GraphProto, name: str, node: onnx.NodeProto) -> bool:
    return all(n is node or name not in n.input for n in graph.node)


def _zero_point_type(graph: onnx.GraphProto, node: onnx.NodeProto) -> int:
    """The 8-bit type of a (De)QuantizeLinear node: its zero point's (uint8 when it has none, as in ONNX)."""
    if len(node.input) > 2:
        for init in graph.initializer:
            if init.name == node.input[2]:
                return init.data_type
    return TensorProto.UINT8


def _output_type(graph: onnx.GraphProto, node: onnx.NodeProto, input_type: int) -> int:
    """Element type of a boundary node's output, from its input's."""
    return _zero_point_type(graph, node) if node.op_type == "QuantizeLinear" else input_type


def _input_type(graph: onnx.GraphProto, node: onnx.NodeProto, output_type: int) -> int:
    """Element type of a boundary node's input, from its output's."""
    return _zero_point_type(graph, node) if node.op_type == "DequantizeLinear" else output_type


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for n in graph.node for name in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def _probe(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> dict[str, tuple[int, list[int]]]:
    """(element type, shape) of the tensors made by boundary input nodes (e.g. padded blocked channels).

    Runs a graph of just those nodes once, so it costs microseconds whatever the model.
    """
    names = {n.input[0] for n in nodes}
    inputs = [i for i in model.graph.input if i.name in names]
    types = {i.name: i.type.tensor_type.elem_type for i in inputs}
    outputs = [helper.make_tensor_value_info(n.output[0], _output_type(model.graph, n, types[n.input[0]]), None)
               for n in nodes]  # fmt: skip
    wanted = {name for n in nodes for name in n.input[1:]}
    weights = [i for i in model.graph.initializer if i.name in wanted]
    graph = helper.make_graph(list(nodes), "probe", inputs, outputs, weights)
    probe = helper.make_model(graph, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    session = make_session(probe.SerializeToString(), 1, "disable")
    values = session.run([n.output[0] for n in nodes], random_feeds(session))
    return {n.output[0]: (helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
            for n, v in zip(nodes, values, strict=True)}  # fmt: skip


def producer(channels: int, rank: int = 2) -> nn.Module:
    """The cheap layout producer (or consumer) around a unit: a depthwise 1x1 convolution.

    Args:
        channels: Channels of the tensor it produces.
        rank: Spatial rank (2 for (C, H, W) maps, 1 for (C, L) sequences).
    """
    conv = nn.Conv2d if rank == 2 else nn.Conv1d
    return conv(channels, channels, kernel_size=1, groups=channels, bias=True)


def prepare_onnx(model: bytes, inputs: bool = True, outputs: bool = True) -> bytes:
    """Optimise with ORT and strip the boundary conversions; run the result with optimisation disabled.

    ``inputs``/``outputs``: strip at the graph inputs/outputs (see :func:`strip_boundaries`).
    """
    return strip_boundaries(optimize_onnx(model), inputs, outputs).SerializeToString()


def prepare_in_network(module: nn.Module, *input_shapes: tuple[int, ...]) -> bytes:
    """Export a torch module, then :func:`prepare_onnx` it."""
    return prepare_onnx(export_onnx(module, *input_shapes))


def channel_block_size() -> int:
    """Channel count the runtime pads tensors to in its blocked layout (16 with AVX-512, 8 with AVX2, 1: none).

    Probed by preparing a producer on a 36-channel map (the runtime blocks only multiples of 4):
    its blocked input has ``ceil(36 / block) * block`` channels, i.e. 36 + (block - 4) for the
    blocks 4, 8, 16, 32 (40, 48, 64 for 8, 16, 32); with no blocked layout the input stays unchanged.
    """
    prepared = onnx.ModelProto.FromString(prepare_in_network(producer(36), (36, 4, 4)))
    graph_input = prepared.graph.input[0]
    if graph_input.name == "input":  # no ReorderInput was stripped: the runtime does not block
        return 1
    return graph_input.type.tensor_type.shape.dim[1].dim_value - 32
