"""ONNX export: torch vs ONNX Runtime parity on the baselines and random specs, dynamic batch, clear errors."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import latency_tables.layout
from common.onnx_export import OnnxExportError, export_onnx
from quantize.export import ExportResult, OnnxParityError, export_model
from quantize.ort_eval import onnx_logits
from search_spaces import build_model, create_search_space, get_baseline, list_baselines

MEL_SHAPE = (1, 40, 101)
WAVE_SHAPE = (1, 8000)  # half a second at 16 kHz: enough for every stride and pool of the space
N_CLASSES = 7


def _inputs(shape: tuple[int, ...], n: int = 7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, *shape)) * rng.uniform(0.3, 2.0, (n,) + (1,) * len(shape))).astype(np.float32)


def _cheap_specs(space_name: str, shape: tuple[int, ...], count: int) -> list:
    space = create_search_space(space_name)
    rng = random.Random(7)
    specs = []
    while len(specs) < count:
        spec = space.sample(rng)
        if sum(u.macs for u in space.trace(spec, N_CLASSES, shape)) < 10e6:
            specs.append(spec)
    return specs


def _check_export(model: nn.Module, shape: tuple[int, ...], tmp_path) -> ExportResult:
    x = _inputs(shape)
    result = export_model(model, shape, tmp_path / "model.onnx", sample_inputs=x)
    assert result.path.is_file() and result.opset == 17
    assert result.size_kb == pytest.approx(result.path.stat().st_size / 1024)
    assert result.max_abs_diff < 1e-4
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    for batch in (1, 7):  # the dynamic batch axis takes both
        np.testing.assert_allclose(onnx_logits(result.path, x, batch_size=batch), expected, atol=1e-4, rtol=1e-4)
    return result


@pytest.mark.parametrize("name", list_baselines())
def test_every_baseline_exports_with_parity(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(get_baseline(name), N_CLASSES, MEL_SHAPE)
    result = _check_export(model, MEL_SHAPE, tmp_path)
    graph = onnx.load(result.path).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize(
    ("space", "shape", "index"),
    [("mel2d", MEL_SHAPE, i) for i in range(3)] + [("wave1d", WAVE_SHAPE, i) for i in range(3)],
)
def test_random_specs_export_with_parity(space, shape, index, tmp_path):
    spec = _cheap_specs(space, shape, 3)[index]
    torch.manual_seed(index)
    _check_export(build_model(spec, N_CLASSES, shape), shape, tmp_path)


def test_latency_table_export_is_unchanged():
    """Batch 1, static shapes, inputs named 'input', the exporter's own output name: what the tables timed."""
    assert latency_tables.layout.export_onnx is export_onnx
    torch.manual_seed(0)
    model = build_model(get_baseline("tiny"), N_CLASSES, MEL_SHAPE)
    graph = onnx.load_from_string(export_onnx(model, MEL_SHAPE)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, *MEL_SHAPE]
    assert graph.output[0].name != "logits"
    assert export_onnx(model, MEL_SHAPE) == export_onnx(model, MEL_SHAPE)  # deterministic bytes
    two = onnx.load_from_string(export_onnx(_TwoInputs(), (3,), (3,))).graph
    assert [i.name for i in two.input] == ["input0", "input1"]


class _TwoInputs(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _Unsupported(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(x).abs()


def test_unsupported_op_is_named():
    with pytest.raises(OnnxExportError, match=r"aten::fft_rfft") as info:
        export_onnx(_Unsupported(), (16,))
    assert info.value.op == "aten::fft_rfft"
    assert "opset version 17" in info.value.message


class _TracedBranch(nn.Module):
    """A data-dependent branch: tracing keeps the branch of the zero input and ignores the rest."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :3] * (2.0 if bool(x.sum() > 0) else -1.0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_parity_failure_is_reported_and_nothing_written(tmp_path):
    x = np.abs(_inputs((1, 4, 4))) + 0.1  # positive sum: torch takes the other branch than the trace
    with pytest.raises(OnnxParityError, match=r"differs from torch by up to .*not written"):
        export_model(_TracedBranch(), (1, 4, 4), tmp_path / "bad.onnx", sample_inputs=x)
    assert not (tmp_path / "bad.onnx").exists()


def test_sample_inputs_must_match_the_input_shape(tmp_path):
    model = build_model(get_baseline("dscnn"), N_CLASSES, MEL_SHAPE)
    with pytest.raises(ValueError, match=r"sample_inputs must have shape \(n >= 1, 1, 40, 101\)"):
        export_model(model, MEL_SHAPE, tmp_path / "m.onnx", sample_inputs=np.zeros((2, 1, 40, 100), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        export_model(model, MEL_SHAPE, tmp_path / "m.onnx", sample_inputs=np.full((2, *MEL_SHAPE), np.nan, np.float32))
