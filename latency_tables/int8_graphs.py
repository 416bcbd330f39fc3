"""INT8 op graphs written directly in the QDQ form the project's recipe produces (about 1 ms a graph).

Quantizing each op graph with ``onnxruntime.quantization.quantize_static`` cost about 80 ms a
graph on a 2-core Xeon (its per-channel weight scales are computed in a Python loop), longer than
timing the graph: a whole INT8 table would spend 15 minutes quantizing. This module rewrites an
fp32 op graph (:mod:`latency_tables.onnx_graphs`) into what ``quantize_static`` makes of it with
the recipe (:func:`quantize.recipe.static_recipe`):

* convolution and ``Gemm`` weights become INT8 initializers behind a per-channel (axis 0)
  ``DequantizeLinear``, biases INT32 ones with per-channel scales;
* a ``Relu`` right after a convolution or ``Gemm`` is folded into the quantization of its output
  (the quantizer drops it: the uint8 range starts at 0);
* every activation, graph inputs included, passes through a per-tensor uint8
  ``QuantizeLinear`` -> ``DequantizeLinear`` pair; data-movement ops (``Flatten``, ``MaxPool``)
  reuse their input's scale, so that ONNX Runtime can drop the pair around them.

Values are random: integer kernels run in the same time whatever the weights and scales.
``tests/test_latency_int8.py`` checks, for every op kind, that ONNX Runtime optimises this graph
and the recipe's output for the op's torch module to the same nodes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTED = ("Conv", "Gemm")
SAME_SCALE = ("Flatten", "MaxPool")  # ops whose output keeps its input's quantization


def qdq_graph(model: bytes, seed: int = 0) -> bytes:
    """The fp32 op graph ``model`` rewritten as the recipe's static QDQ graph (see the module docstring).

    Args:
        model: A serialised fp32 graph of :mod:`latency_tables.onnx_graphs` (Conv, Gemm, Relu,
            GlobalAveragePool, Flatten, HardSigmoid, Mul, Add, MaxPool).
        seed: Seeds the random weights and scales.

    Returns:
        The serialised QDQ graph.
    """
    source = onnx.ModelProto.FromString(model)
    graph = source.graph
    rng = np.random.default_rng(seed)
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes, inits = list(graph.node), []
    folded = _fold_relus(nodes)
    out_nodes: list[onnx.NodeProto] = []
    scales: dict[str, str] = {}  # activation -> the name of its (scale, zero point) pair
    scale_values: dict[str, np.ndarray] = {}  # scale name -> value (a bias's scale is input scale x weight scale)

    def activation_pair(name: str, like: str | None = None) -> tuple[str, str]:
        if like is not None:
            scales[name] = scales[like]
        elif name not in scales:
            scales[name] = name
            scale_values[f"{name}_scale"] = np.array(rng.uniform(0.01, 0.05), np.float32)
            inits.append(numpy_helper.from_array(scale_values[f"{name}_scale"], f"{name}_scale"))
            inits.append(numpy_helper.from_array(np.array(0 if name in folded else 128, np.uint8), f"{name}_zp"))
        base = scales[name]
        return f"{base}_scale", f"{base}_zp"

    def qdq(name: str, like: str | None = None) -> str:
        scale, zp = activation_pair(name, like)
        out_nodes.append(helper.make_node("QuantizeLinear", [name, scale, zp], [f"{name}_q"]))
        out_nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", scale, zp], [f"{name}_dq"]))
        return f"{name}_dq"

    def weight(name: str, bias_of: tuple[str, str] | None) -> str:
        """An INT8 weight, or (``bias_of``: the op's input and weight) an INT32 bias, behind its DequantizeLinear."""
        values = weights[name]
        channels = values.shape[0]
        dtype = np.int32 if bias_of else np.int8
        info = np.iinfo(np.int8)
        data = rng.integers(info.min, info.max, size=values.shape, endpoint=True).astype(dtype)
        inits.append(numpy_helper.from_array(data, f"{name}_quantized"))
        if bias_of:  # ORT fuses the bias into QLinearConv only with exactly this scale
            input_scale = scale_values[f"{scales[bias_of[0]]}_scale"]
            scale = (input_scale * scale_values[f"{bias_of[1]}_wscale"]).astype(np.float32)
        else:
            scale = rng.uniform(1e-4, 1e-2, channels).astype(np.float32)
        scale_values[f"{name}_wscale"] = scale
        inits.append(numpy_helper.from_array(scale, f"{name}_wscale"))
        inits.append(numpy_helper.from_array(np.zeros(channels, dtype), f"{name}_wzp"))
        out_nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_wscale", f"{name}_wzp"],
                                          [f"{name}_dequantized"], axis=0))  # fmt: skip
        return f"{name}_dequantized"

    dequantized = {i.name: qdq(i.name) for i in graph.input if i.name not in weights}
    for node in nodes:
        if node.op_type == "Relu" and node.input[0] in folded:
            dequantized[node.output[0]] = dequantized[node.input[0]]  # folded into the producer's quantization
            scales[node.output[0]] = scales[node.input[0]]
            continue
        inputs = []
        for position, name in enumerate(node.input):
            if name in weights and node.op_type in WEIGHTED:
                bias_of = (node.input[0], node.input[1]) if position == 2 else None
                inputs.append(weight(name, bias_of))
            elif name in weights:
                inputs.append(name)
            else:
                inputs.append(dequantized[name])
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        out_nodes.append(helper.make_node(node.op_type, inputs, list(node.output), name=node.name, **attrs))
        like = node.input[0] if node.op_type in SAME_SCALE else None
        dequantized[node.output[0]] = qdq(node.output[0], like)
    outputs = [helper.make_tensor_value_info(dequantized[o.name], TensorProto.FLOAT, None) for o in graph.output]
    new = helper.make_graph(out_nodes, graph.name, list(graph.input), outputs, inits)
    result = helper.make_model(new, opset_imports=list(source.opset_import))
    result.ir_version = source.ir_version
    return result.SerializeToString()


def _fold_relus(nodes: list[onnx.NodeProto]) -> dict[str, str]:
    """``{weighted op's output: its Relu's output}`` for each Relu that alone reads a Conv/Gemm output."""
    producers = {n.output[0]: n for n in nodes}
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    folded = {}
    for node in nodes:
        source = producers.get(node.input[0]) if node.op_type == "Relu" else None
        if source is not None and source.op_type in WEIGHTED and readers[node.input[0]] == 1:
            folded[node.input[0]] = node.output[0]
    return folded
