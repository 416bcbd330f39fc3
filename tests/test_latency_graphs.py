"""The directly built ONNX graphs optimise, in ORT, to the same nodes as the torch modules that define them."""

from __future__ import annotations

import onnx
import pytest

from latency_tables.keys import parse_op_key
from latency_tables.layout import REORDER_IN, REORDER_OUT
from latency_tables.op_models import prepare, prepare_torch

KEYS = [
    "stem_1x40x101_16_k3x3_s2_relu",
    "stem_1x40x101_64_k4x10_s2_relu",
    "conv_16x20x51_32_k3x3_s1_relu",
    "conv_12x10x26_24_k5x5_s2_relu",
    "dw_64x20x51_k5x5_s2_relu",
    "pw_16x20x51_64_relu",
    "pw_64x20x51_16_linear",
    "pw_64x20x51_16_linear_sum",
    "add_16x20x51",
    "se_64x10x26",
    "head_64x5x13_c10_h128",
    "head_64x5x13_c10",
    "stem_1x16000_32_k80_s4_relu",
    "conv_16x4000_32_k3_s1_relu",
    "pool_32x4000_p4",
    "head_32x250_c10",
]


def _nodes(model: bytes) -> list[tuple[str, str, tuple[str, ...]]]:
    graph = onnx.load_from_string(model).graph
    return [
        (n.domain.split(".")[-1], n.op_type, tuple(a.s.decode() for a in n.attribute if a.name == "activation"))
        for n in graph.node
    ]


@pytest.mark.parametrize("key", KEYS)
def test_direct_graph_equals_torch_export_after_optimisation(key):
    op = parse_op_key(key)
    direct, torch_graphs = prepare(op), prepare_torch(op)
    assert direct.reference_key == torch_graphs.reference_key
    a, b = _nodes(direct.model), _nodes(torch_graphs.model)
    if op.kind == "se":  # same nodes; ORT places one layout conversion at another topological position
        assert sorted(a) == sorted(b)
    else:
        assert a == b
    if direct.reference is not None:
        assert _nodes(direct.reference) == _nodes(torch_graphs.reference)


@pytest.mark.parametrize(
    "key", ["conv_16x20x51_32_k3x3_s1_relu", "pw_64x20x51_16_linear_sum", "dw_32x10x26_k3x3_s1_relu"]
)
def test_boundary_layout_conversions_are_stripped(key):
    graph = onnx.load_from_string(prepare(parse_op_key(key)).model).graph
    inputs = {i.name for i in graph.input}
    outputs = {o.name for o in graph.output}
    assert not [n for n in graph.node if n.op_type == REORDER_IN and n.input[0] in inputs]
    assert not [n for n in graph.node if n.op_type == REORDER_OUT and n.output[0] in outputs]


def test_residual_add_context_keeps_a_separate_add():
    kinds = [n[1] for n in _nodes(prepare(parse_op_key("add_16x20x51")).model)]
    assert kinds.count("Add") == 1  # not folded into a producer convolution
    kinds = [n[1] for n in _nodes(prepare(parse_op_key("pw_64x20x51_16_linear_sum")).model)]
    assert "Add" not in kinds  # the projection's residual add is fused into the convolution
