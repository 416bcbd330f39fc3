"""Smaller deployment files: the same graph with short tensor names and no shape annotations.

A QDQ model of a small CNN stores every activation's long exporter name several times
(``/blocks/blocks.1/se/Mul_output_0_QuantizeLinear_Output`` and the like) plus the value_info
added by shape inference; on a 20k-parameter network that is more bytes than the INT8 weights
themselves. Renaming tensors to ``t<k>`` and dropping ``value_info`` changes nothing ONNX Runtime
computes (it re-infers shapes) while node names, graph input and output names are kept, so a
layer can still be found by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from common.atomic import atomic_write_bytes


def compact_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with short internal tensor names and no ``value_info`` (see the module docstring).

    Subgraphs (If/Loop bodies) are not renamed: a model that has any is returned unchanged
    apart from dropping the top-level ``value_info``.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    del graph.value_info[:]
    subgraphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(attr.type in subgraphs for node in graph.node for attr in node.attribute):
        return model
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in names:
            candidate = f"t{len(names)}"
            while candidate in keep:
                candidate += "_"
            names[name] = candidate
        return names[name]

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
    return model


def compact_file(path: str | os.PathLike) -> float:
    """Rewrite an ONNX file compacted (atomically); returns its new size in KiB."""
    path = Path(path)
    data = compact_model(onnx.load(os.fspath(path))).SerializeToString()
    atomic_write_bytes(path, data)
    return len(data) / 1024
