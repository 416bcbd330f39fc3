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


def strip_boundary_reorders(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove layout conversions at the graph boundary so the graph takes/returns blocked tensors.

    Args:
        model: An ORT-optimised graph (see :func:`optimize_onnx`); it is not modified.

    Returns:
        A copy whose inputs are the blocked tensors the removed ``ReorderInput`` nodes produced
        (with their concrete padded shapes) and whose outputs are the tensors the removed
        ``ReorderOutput`` nodes consumed. Unchanged if there is nothing to strip.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inputs = {i.name: i for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    reorder_in = [n for n in graph.node if n.op_type == REORDER_IN and n.input[0] in inputs]
    reorder_out = [n for n in graph.node if n.op_type == REORDER_OUT and n.output[0] in outputs]
    if reorder_in:
        shapes = _blocked_shapes(model, reorder_in)
        for node in reorder_in:
            graph.node.remove(node)
            graph.input.remove(inputs[node.input[0]])
            graph.input.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, shapes[node.output[0]]))
    for node in reorder_out:
        graph.node.remove(node)
        graph.output.remove(outputs[node.output[0]])
        graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    return model


def _blocked_shapes(model: onnx.ModelProto, reorders: list[onnx.NodeProto]) -> dict[str, list[int]]:
    """Shapes of the blocked tensors made by boundary ``ReorderInput`` nodes (padded channels).

    Runs a graph of just those nodes once, so it costs microseconds whatever the model.
    """
    names = {n.input[0] for n in reorders}
    inputs = [i for i in model.graph.input if i.name in names]
    outputs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in reorders]
    graph = helper.make_graph(list(reorders), "probe", inputs, outputs)
    probe = helper.make_model(graph, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    session = make_session(probe.SerializeToString(), 1, "disable")
    values = session.run([n.output[0] for n in reorders], random_feeds(session))
    return {n.output[0]: list(v.shape) for n, v in zip(reorders, values, strict=True)}


def producer(channels: int, rank: int = 2) -> nn.Module:
    """The cheap layout producer (or consumer) around a unit: a depthwise 1x1 convolution.

    Args:
        channels: Channels of the tensor it produces.
        rank: Spatial rank (2 for (C, H, W) maps, 1 for (C, L) sequences).
    """
    conv = nn.Conv2d if rank == 2 else nn.Conv1d
    return conv(channels, channels, kernel_size=1, groups=channels, bias=True)


def prepare_onnx(model: bytes) -> bytes:
    """Optimise with ORT and strip boundary reorders; run the result with optimisation disabled."""
    return strip_boundary_reorders(optimize_onnx(model)).SerializeToString()


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
