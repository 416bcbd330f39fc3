"""Compacted ONNX files compute exactly what the originals do, keep node and I/O names, and are smaller."""

from __future__ import annotations

import numpy as np
import onnx
import torch

from quantize.compact import compact_file
from quantize.export import export_model
from quantize.int8 import quantize_static_int8
from quantize.ort_eval import onnx_logits
from search_spaces import create_search_space

SHAPE = (1, 40, 101)
SPEC = "c16k3s2-ds32k3s1r2se-ir24k3s2e2se-ds32k3s1se-h0d0"  # SE blocks: many small tensors, long names


def test_compact_int8_is_smaller_and_identical(tmp_path):
    space = create_search_space("mel2d")
    torch.manual_seed(0)
    model = space.build(space.parse(SPEC), 10, SHAPE).eval()
    x = np.random.default_rng(0).standard_normal((16, *SHAPE)).astype(np.float32)
    fp32 = export_model(model, SHAPE, tmp_path / "m.fp32.onnx", sample_inputs=x[:4]).path
    int8 = quantize_static_int8(fp32, tmp_path / "m.int8.onnx", x)
    for path in (fp32, int8):
        before = onnx.load(path)
        logits = onnx_logits(path, x)
        size_before = path.stat().st_size / 1024
        size_after = compact_file(path)
        after = onnx.load(path)
        assert size_after < size_before and abs(path.stat().st_size / 1024 - size_after) < 1e-9
        assert np.array_equal(onnx_logits(path, x), logits)
        assert [n.name for n in after.graph.node] == [n.name for n in before.graph.node]
        assert [i.name for i in after.graph.input] == ["input"] and after.graph.output[0].name == "logits"
        assert not after.graph.value_info
