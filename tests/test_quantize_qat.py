"""Quantization-aware fine-tuning: fake-quant training, QDQ export that ONNX Runtime runs in INT8."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from common.onnx_export import export_onnx
from latency_tables.ort_timing import make_session, session_options
from quantize.export import export_model
from quantize.onnx_graph import fold_weight_quantizers
from quantize.ort_eval import evaluate_onnx, onnx_logits
from quantize.qat import export_qat, prepare_qat, qat_finetune
from search_spaces import build_model, get_baseline
from train.evaluate import evaluate_model
from train.feature_set import Features
from train.features import FeatureConfig
from train.normalization import compute_normalization
from train.splits import Splits
from train.train_config import TrainConfig
from train.trainer import train_model

N_CLASSES, N_BINS, N_FRAMES = 4, 16, 24
CFG = TrainConfig(epochs=6, lr=3e-3, progress=False, device="cpu")


def _features(n_per_class: int = 60) -> Features:
    rng = np.random.default_rng(0)
    n = n_per_class * N_CLASSES
    y = rng.permutation(np.repeat(np.arange(N_CLASSES), n_per_class)).astype(np.int64)
    x = rng.normal(size=(n, N_BINS, N_FRAMES)).astype(np.float32)
    for c in range(N_CLASSES):
        x[y == c, 4 * c : 4 * c + 4] += 1.5
    order = rng.permutation(n)
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    splits = Splits(*(np.sort(p) for p in np.split(order, [n_train, n_train + n_val])), protocol="toy")
    return Features(
        x=x, y=y, classes=[f"c{c}" for c in range(N_CLASSES)], splits=splits,
        normalization=compute_normalization(x, splits.train), speakers=None,
        paths=[f"{i}.wav" for i in range(n)], dataset="toy", config=FeatureConfig(n_mels=N_BINS),
        cache_key="toy", cache_hit=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained():
    features = _features()
    torch.manual_seed(0)
    model = build_model(get_baseline("tiny"), N_CLASSES, features.input_shape)
    train_model(model, features, CFG)
    return features, model.eval()


def test_qat_exports_to_an_int8_graph_that_ort_runs(trained, tmp_path):
    features, model = trained
    fp32_accuracy = evaluate_model(model, features, "test")["accuracy"]
    assert fp32_accuracy > 0.5, "the fp32 model did not learn the toy task"
    qat = qat_finetune(model, features, CFG, epochs=2, lr=3e-4, reduce_range=True)
    sample, _ = features.batch(features.splits.val[:16])
    result = export_qat(qat, features.input_shape, tmp_path / "tiny.int8_qat.onnx", sample_inputs=sample)
    fp32 = export_model(model, features.input_shape, tmp_path / "tiny.fp32.onnx", sample_inputs=sample)
    assert fp32.size_kb / result.size_kb >= 3.0

    graph = onnx.load(result.path).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    weights = [numpy_helper.to_array(i) for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(weights) >= 5 and all(np.abs(w).max() <= 63 for w in weights)  # 7-bit weights
    so = session_options(1, "all")
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(result.path), so, providers=["CPUExecutionProvider"])
    assert "QLinearConv" in {n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node}

    qat_accuracy = evaluate_onnx(result.path, features, "test")["accuracy"]
    assert qat_accuracy >= fp32_accuracy - 0.1
    x, _ = features.batch(features.splits.test)
    assert onnx_logits(result.path, x, batch_size=1).shape == (len(x), N_CLASSES)


def test_the_original_model_is_untouched_and_batchnorm_is_folded(trained):
    features, model = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, _ = features.batch(features.splits.train[:32])
    prepared = prepare_qat(model, x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())
    assert any(type(m).__name__ == "ConvReLU2d" for m in prepared.modules())  # conv+relu quantized as one


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_weight_folding_is_exact(trained):
    features, model = trained
    x, _ = features.batch(features.splits.train[:32])
    prepared = prepare_qat(model, x).eval()
    prepared.apply(torch.ao.quantization.disable_observer)
    raw = export_onnx(prepared, features.input_shape, dynamic_batch=True)
    folded = fold_weight_quantizers(raw)
    assert len(folded) < 0.5 * len(raw)
    reference = onnx_logits(make_session(raw, 1, "disable"), x)
    np.testing.assert_array_equal(onnx_logits(make_session(folded, 1, "disable"), x), reference)
