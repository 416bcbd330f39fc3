"""Static and dynamic INT8 in real ONNX Runtime sessions: size, agreement, exclusions, calibration errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from common.errors import UserError
from latency_tables.ort_timing import session_options
from quantize.export import export_model
from quantize.int8 import StaticQuantizer, quantizable_nodes, quantize_dynamic_int8, quantize_static_int8
from quantize.onnx_graph import weight_precision
from quantize.ort_eval import onnx_logits
from search_spaces import build_model, create_search_space, get_baseline, int8_size_kb

SHAPE = (1, 40, 101)
TRAINED_SHAPE = (1, 40, 51)  # half the frames: the trained test model costs half as much
N_CLASSES = 10


def _band_task(n: int, seed: int, shape: tuple[int, ...] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Noise at a per-clip level plus extra energy in 4 mel bands; the class is which 4 bands."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    x = rng.standard_normal((n, *shape)) * rng.uniform(0.5, 1.5, (n, 1, 1, 1))
    for i, c in enumerate(y):
        x[i, 0, 4 * c : 4 * c + 4] += rng.uniform(1, 3)
    return x.astype(np.float32), y


def _inputs(n: int, seed: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    return _band_task(n, seed, shape)[0]


@pytest.fixture(scope="module")
def small_fp32(tmp_path_factory):
    """The untrained ``small`` baseline: real weight counts (size ratios), degenerate predictions."""
    torch.manual_seed(0)
    model = build_model(get_baseline("small"), N_CLASSES, SHAPE)
    path = tmp_path_factory.mktemp("int8") / "small.onnx"
    return export_model(model, SHAPE, path, sample_inputs=_inputs(4, 9))


@pytest.fixture(scope="module")
def trained_fp32(tmp_path_factory):
    """The ``tiny`` baseline after 30 Adam steps on the band task: predictions spread over the classes."""
    torch.manual_seed(0)
    model = build_model(get_baseline("tiny"), N_CLASSES, TRAINED_SHAPE)
    x, y = (torch.from_numpy(a) for a in _band_task(256, 0, TRAINED_SHAPE))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        rows = torch.randint(0, len(x), (32,))
        loss = torch.nn.functional.cross_entropy(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("int8") / "tiny.onnx"
    return export_model(model, TRAINED_SHAPE, path, sample_inputs=_inputs(4, 9, TRAINED_SHAPE))


@pytest.fixture(scope="module")
def calibration():
    return _inputs(32, 1)


def _optimized_graph(path, tmp_path) -> onnx.GraphProto:
    """The graph ONNX Runtime actually runs (full optimisation), as it wrote it out."""
    so = session_options(1, "all")
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return onnx.load(so.optimized_model_filepath).graph


def test_static_int8_is_at_least_3x_smaller(small_fp32, calibration, tmp_path):
    out = quantize_static_int8(small_fp32.path, tmp_path / "small.int8_static.onnx", calibration)
    assert out.is_file()
    assert small_fp32.size_kb / (out.stat().st_size / 1024) >= 3.0
    assert set(weight_precision(out).values()) == {"int8"}
    ops = {n.op_type for n in _optimized_graph(out, tmp_path).node}
    assert "QLinearConv" in ops  # ORT runs integer convolutions, not float ones on dequantized weights
    x = _inputs(3, 2)
    assert onnx_logits(out, x, batch_size=1).shape == onnx_logits(out, x, batch_size=3).shape == (3, N_CLASSES)


def test_static_int8_agrees_with_fp32_top1(trained_fp32, tmp_path):
    out = quantize_static_int8(trained_fp32.path, tmp_path / "tiny.int8.onnx", _inputs(32, 1, TRAINED_SHAPE))
    x = _inputs(128, 2, TRAINED_SHAPE)
    fp32, int8 = onnx_logits(trained_fp32.path, x).argmax(axis=1), onnx_logits(out, x).argmax(axis=1)
    assert len(np.unique(fp32)) >= 5, "the test model's predictions are degenerate"
    assert np.mean(fp32 == int8) >= 0.9


def test_quantizable_nodes_are_the_exported_layers(small_fp32):
    nodes = quantizable_nodes(small_fp32.path)
    assert nodes[0] == "/stem/conv/conv/Conv" and nodes[-1] == "/head/classifier/Gemm"
    assert sum(n.endswith("/Conv") for n in nodes) == 7  # stem + 6 blocks
    assert "/head/pool/GlobalAveragePool" in nodes
    assert not any(n.endswith("Relu") for n in nodes)


def test_excluded_nodes_stay_fp32_in_the_file_and_in_ort(trained_fp32, tmp_path):
    nodes = quantizable_nodes(trained_fp32.path)
    excluded = ["/blocks/blocks.1/conv/conv/Conv", "/head/classifier/Gemm"]
    calibration = _inputs(32, 1, TRAINED_SHAPE)
    out = quantize_static_int8(trained_fp32.path, tmp_path / "partial.onnx", calibration, nodes_to_exclude=excluded)
    precision = weight_precision(out)
    assert [n for n in nodes if precision.get(n) == "fp32"] == excluded
    graph = onnx.load(out).graph
    producers = {o: n for n in graph.node for o in n.output}
    for node in (n for n in graph.node if n.name in excluded):
        feeding = [producers[i].op_type for i in node.input if i in producers]
        assert "DequantizeLinear" not in feeding and "QuantizeLinear" not in feeding, (node.name, feeding)
    # ORT's own optimizer must not quantize them at session start (its WeightBiasQuantization would)
    optimized = _optimized_graph(out, tmp_path)
    initializers = {i.name: i for i in optimized.initializer}
    float_convs = [n for n in optimized.node if n.op_type in ("Conv", "FusedConv", "Gemm", "FusedGemm")]
    assert len(float_convs) == 2
    for node in float_convs:
        weight = node.input[1]
        assert weight in initializers and initializers[weight].data_type == onnx.TensorProto.FLOAT
    x = _inputs(64, 3, TRAINED_SHAPE)
    assert np.mean(onnx_logits(out, x).argmax(1) == onnx_logits(trained_fp32.path, x).argmax(1)) >= 0.9


def test_unknown_node_name_is_refused(small_fp32, calibration, tmp_path):
    with pytest.raises(UserError, match=r"nodes_to_exclude names no node .*: /no/such/Conv; its layers are: /stem"):
        quantize_static_int8(small_fp32.path, tmp_path / "x.onnx", calibration, nodes_to_exclude=["/no/such/Conv"])


def test_every_calibration_method_runs_and_entropy_is_not_minmax(trained_fp32, tmp_path):
    """ORT's quantize_static alone gives entropy == minmax (128 bins for 128 levels); ours does not."""
    calibration, x = _inputs(16, 1, TRAINED_SHAPE), _inputs(64, 2, TRAINED_SHAPE)
    fp32 = onnx_logits(trained_fp32.path, x).argmax(axis=1)
    files = {}
    for method in ("minmax", "entropy", "percentile"):
        files[method] = quantize_static_int8(trained_fp32.path, tmp_path / f"{method}.onnx", calibration, method=method)
        assert np.mean(onnx_logits(files[method], x).argmax(axis=1) == fp32) >= 0.8, method
    assert files["minmax"].read_bytes() != files["entropy"].read_bytes()


def test_quantizer_reuses_its_calibration(small_fp32, calibration, tmp_path):
    with StaticQuantizer(small_fp32.path, calibration) as quantizer:
        first = quantizer.quantize(tmp_path / "a.onnx")
        again = quantizer.quantize(tmp_path / "b.onnx")
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() == quantize_static_int8(small_fp32.path, tmp_path / "c.onnx", calibration).read_bytes()


def test_dynamic_int8_is_weights_only_and_runs(small_fp32, trained_fp32, tmp_path):
    out = quantize_dynamic_int8(small_fp32.path, tmp_path / "small.int8_dynamic.onnx")
    assert small_fp32.size_kb / (out.stat().st_size / 1024) >= 3.0
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert "ConvInteger" in ops and "DynamicQuantizeLinear" in ops and "QuantizeLinear" not in ops
    out = quantize_dynamic_int8(trained_fp32.path, tmp_path / "tiny.int8_dynamic.onnx")
    x = _inputs(64, 4, TRAINED_SHAPE)
    assert np.mean(onnx_logits(out, x).argmax(1) == onnx_logits(trained_fp32.path, x).argmax(1)) >= 0.8


@pytest.mark.parametrize(
    ("calib", "match"),
    [
        (np.zeros((16, 1, 40, 100), np.float32), r"must have shape \(n, 1, 40, 101\).*got \(16, 1, 40, 100\)"),
        (np.zeros((16, 40, 101), np.float32), r"must have shape \(n, 1, 40, 101\)"),
        (np.zeros((4, 1, 40, 101), np.float32), r"has 4 clips; at least 8 are needed"),
        (np.full((8, 1, 40, 101), np.nan, np.float32), r"NaN or infinite values in 8 of 8 clips"),
    ],
)
def test_bad_calibration_is_a_user_error(small_fp32, tmp_path, calib, match):
    with pytest.raises(UserError, match=match):
        quantize_static_int8(small_fp32.path, tmp_path / "x.onnx", calib)
    assert not (tmp_path / "x.onnx").exists()


def test_min_clips_and_method_are_checked(small_fp32, calibration, tmp_path):
    with pytest.raises(UserError, match="at least 64 are needed"):
        quantize_static_int8(small_fp32.path, tmp_path / "x.onnx", calibration, min_clips=64)
    with pytest.raises(UserError, match="unknown calibration method 'kl'; choose one of minmax, entropy, percentile"):
        quantize_static_int8(small_fp32.path, tmp_path / "x.onnx", calibration, method="kl")


def _sampled_spec_with_se_and_ir():
    import random

    space = create_search_space("mel2d")
    rng = random.Random(3)
    while True:
        spec = space.sample(rng)
        text = str(spec)
        if "se" in text and "ir" in text and "h0" not in text:
            try:
                space.trace(spec, N_CLASSES, SHAPE)
            except UserError:
                continue
            return spec


@pytest.mark.parametrize("which", ["small", "dscnn", "sampled"])
def test_int8_size_kb_is_what_the_static_int8_file_stores(which, calibration, tmp_path):
    spec = _sampled_spec_with_se_and_ir() if which == "sampled" else get_baseline(which)
    torch.manual_seed(0)
    fp32 = export_model(build_model(spec, N_CLASSES, SHAPE), SHAPE, tmp_path / "m.onnx", sample_inputs=_inputs(4, 9))
    out = quantize_static_int8(fp32.path, tmp_path / "m.int8_static.onnx", calibration)
    stored_kb = sum(numpy_helper.to_array(t).nbytes for t in onnx.load(out).graph.initializer) / 1024
    predicted_kb = int8_size_kb(create_search_space(spec.space).trace(spec, N_CLASSES, SHAPE))
    assert predicted_kb == pytest.approx(stored_kb, rel=0.005), (str(spec), predicted_kb, stored_kb)
