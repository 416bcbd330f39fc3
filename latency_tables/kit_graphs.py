"""The graphs a latency kit ships: weights moved into one shared file, and the whole models it times.

Timing does not depend on weight values, so every large weight of every graph points into the same
``weights.bin`` (random float32 values in a small range, as long as the largest tensor): a kit of
11,235 mel2d op graphs stays a few tens of MB instead of a GB. Only weights move (a ``Conv`` or
``Gemm`` weight operand, or the INT8 tensor a ``DequantizeLinear`` reads): scales, zero points and
biases stay inline, so a QDQ graph stays valid. INT8 weights read float bytes as random integers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from latency_tables.calibration import random_specs
from search_spaces import ArchSpec, create_search_space

WEIGHTS_FILE = "weights.bin"
EXTERNAL_MIN_BYTES = 1024  # tensors up to this size stay inline
WEIGHT_TYPES = (TensorProto.FLOAT, TensorProto.INT8, TensorProto.UINT8)
WEIGHT_RANGE = 0.05  # weights.bin holds uniform(-0.05, 0.05) float32 values
PROBE_CHANNELS = 36  # the channel-block probe (see layout.channel_block_size)
VALIDATION_SEED_OFFSET = 10_007  # validate.validate_table draws its specs with seed + this


def externalize(model: bytes) -> tuple[bytes, int]:
    """``model`` with its large weights pointing into :data:`WEIGHTS_FILE` (offset 0, their own length).

    Returns:
        The serialized model and the largest external tensor's size in bytes (0: none moved).
    """
    proto = onnx.ModelProto.FromString(model)
    graph = proto.graph
    weights = {n.input[1] for n in graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 1}
    weights |= {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    largest = 0
    for init in graph.initializer:
        if init.name not in weights or init.data_type not in WEIGHT_TYPES:
            continue
        size = numpy_helper.to_array(init).nbytes
        if size <= EXTERNAL_MIN_BYTES:
            continue
        moved = TensorProto(name=init.name, dims=list(init.dims), data_type=init.data_type)
        moved.data_location = TensorProto.EXTERNAL
        for key, value in (("location", WEIGHTS_FILE), ("offset", "0"), ("length", str(size))):
            entry = moved.external_data.add()
            entry.key, entry.value = key, value
        init.CopyFrom(moved)
        largest = max(largest, size)
    return proto.SerializeToString(), largest


def weights_bytes(size: int, seed: int = 0) -> bytes:
    """The shared weights file: ``size`` bytes (rounded up to float32s) of uniform(-0.05, 0.05) values."""
    n = max(1, -(-size // 4))
    return np.random.default_rng(seed).uniform(-WEIGHT_RANGE, WEIGHT_RANGE, n).astype(np.float32).tobytes()


def probe_graph() -> bytes:
    """A depthwise 1x1 convolution on a 36-channel map, input named ``input``: the channel-block probe."""
    c = PROBE_CHANNELS
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((c, 1, 1, 1)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b")
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=[1, 1], group=c)
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def spread_by_macs(space_name: str, k: int, seed: int, n_classes: int, input_shape: tuple[int, ...]) -> list[ArchSpec]:
    """``k`` random specs at evenly spaced quantiles of their MACs (small to large).

    The kit's stand-in for :func:`latency_tables.calibration.spread_by_latency`, which needs a table
    the kit is there to make; MACs order models much as latency does.
    """
    space = create_search_space(space_name)
    pool = random_specs(space_name, max(40 * k, 200), seed, n_classes, input_shape)
    if len(pool) <= k:
        return pool
    macs = np.array([sum(u.macs for u in space.trace(s, n_classes, input_shape)) for s in pool], dtype=float)
    order = np.argsort(np.log(np.maximum(macs, 1.0)), kind="stable")
    picks = np.unique(np.linspace(0, len(pool) - 1, k).round().astype(int))
    return [pool[order[i]] for i in picks]


def validation_specs(
    space_name: str, n: int, seed: int, n_classes: int, input_shape: tuple[int, ...]
) -> list[ArchSpec]:
    """The specs ``--mode validate-latency`` would measure (same sample, same seed)."""
    return random_specs(space_name, n, seed + VALIDATION_SEED_OFFSET, n_classes, input_shape)
