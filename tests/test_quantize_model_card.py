"""Model cards beside ONNX files, and ONNX Runtime evaluation on a split of real Features objects."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from common.errors import UserError
from quantize.export import export_model
from quantize.model_card import ModelCard, card_path, make_card, read_card, write_card
from quantize.ort_eval import evaluate_onnx, onnx_logits
from search_spaces import build_model, get_baseline
from train.evaluate import evaluate_model
from train.feature_set import Features
from train.features import FeatureConfig
from train.normalization import compute_normalization
from train.splits import Splits

N_CLASSES, N_BINS, N_FRAMES = 4, 16, 24


def _features(n_per_class: int = 20) -> Features:
    """A toy dataset through the real Features/Splits/Normalization types (as in the trainer tests)."""
    rng = np.random.default_rng(0)
    n = n_per_class * N_CLASSES
    y = rng.permutation(np.repeat(np.arange(N_CLASSES), n_per_class)).astype(np.int64)
    x = (rng.normal(size=(n, N_BINS, N_FRAMES)) * 3 + 5).astype(np.float32)
    for c in range(N_CLASSES):
        x[y == c, 4 * c : 4 * c + 4] += 2.0
    order = rng.permutation(n)
    splits = Splits(np.sort(order[:40]), np.sort(order[40:60]), np.sort(order[60:]), "toy")
    return Features(
        x=x,
        y=y,
        classes=[f"class{c}" for c in range(N_CLASSES)],
        splits=splits,
        normalization=compute_normalization(x, splits.train),
        speakers=np.array([f"spk{i % 3}" for i in range(n)], dtype=object),
        paths=[f"clip{i}.wav" for i in range(n)],
        dataset="toy",
        config=FeatureConfig(n_mels=N_BINS),
        cache_key="toy",
        cache_hit=True,
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    features = _features()
    torch.manual_seed(0)
    model = build_model(get_baseline("tiny"), N_CLASSES, features.input_shape)
    sample, _ = features.batch(features.splits.train[:4])
    path = tmp_path_factory.mktemp("card") / "tiny.fp32.onnx"
    export_model(model, features.input_shape, path, sample_inputs=sample)
    return features, model, path


def test_card_round_trips_and_describes_the_input(exported):
    features, _, path = exported
    card = make_card(path, features, model_name="tiny", spec=str(get_baseline("tiny")), variant="fp32")
    written = write_card(path, card)
    assert written == path.with_name("tiny.fp32.json") == card_path(path)
    loaded = read_card(path)
    assert loaded == card
    assert loaded.feature_config() == features.config
    np.testing.assert_array_equal(loaded.normalization().mean, features.normalization.mean)
    np.testing.assert_array_equal(loaded.normalization().std, features.normalization.std)
    assert (loaded.input_name, loaded.output_name, loaded.input_shape) == ("input", "logits", [1, N_BINS, N_FRAMES])
    assert loaded.classes == features.classes and loaded.opset == 17 and loaded.n_samples == 16000
    # what the card says is enough to feed the model: normalise raw features, run, name the class
    raw = features.x[features.splits.val[:3]]
    x = loaded.normalization().apply(raw).reshape(-1, *loaded.input_shape)
    expected, _ = features.batch(features.splits.val[:3])
    np.testing.assert_allclose(onnx_logits(path, x), onnx_logits(path, expected), rtol=1e-6)


def test_missing_card_says_how_to_make_one(tmp_path):
    expected = r"small\.int8_static\.onnx has no model card small\.int8_static\.json beside it; export models with"
    with pytest.raises(UserError, match=expected + r" --mode quantization$"):
        read_card(tmp_path / "small.int8_static.onnx")


def _write_raw(path, data) -> None:
    card_path(path).write_text(data if isinstance(data, str) else json.dumps(data))


def test_malformed_cards_name_the_field(exported, tmp_path):
    features, _, path = exported
    good = dataclasses.asdict(make_card(path, features, model_name="tiny", spec="x", variant="fp32"))
    target = tmp_path / "m.onnx"
    cases = [
        ("{not json", r"is not valid JSON"),
        ([1, 2], r"must hold a JSON object"),
        ({k: v for k, v in good.items() if k != "classes"}, r"lacks the field\(s\) 'classes'"),
        ({**good, "opset": "seventeen"}, r"field 'opset' should be int, got 'seventeen'"),
        ({**good, "norm_std": good["norm_std"][:-1]}, r"field 'norm_std' must hold 16 finite numbers"),
        ({**good, "features": {**good["features"], "kind": "spectrum"}}, r"field 'features' is not a valid"),
        ({**good, "sample_rate": 8000}, r"field 'sample_rate' is 8000 but 'features' says 16000"),
        ({**good, "format_version": 99}, r"format_version 99; this tool reads versions up to 1"),
        ({**good, "colour": "blue"}, r"unknown field\(s\) colour"),
    ]
    for data, match in cases:
        _write_raw(target, data)
        with pytest.raises(UserError, match=match):
            read_card(target)


def test_card_type_is_a_plain_dataclass():
    assert dataclasses.is_dataclass(ModelCard)
    names = {f.name for f in dataclasses.fields(ModelCard)}
    assert {"sample_rate", "clip_seconds", "n_samples", "feature_kind", "features", "norm_mean", "norm_std"} <= names
    assert {"classes", "input_name", "input_shape", "output_name", "model_name", "spec", "variant"} <= names
    assert {"opset", "onnxruntime_version", "format_version"} <= names


def test_evaluate_onnx_matches_torch_evaluation(exported):
    features, model, path = exported
    for split in ("val", "test"):
        onnx_metrics = evaluate_onnx(path, features, split, batch_size=7)  # batches that do not divide the split
        torch_metrics = evaluate_model(model, features, split)
        assert onnx_metrics["split"] == split and onnx_metrics["n"] == len(features.splits[split])
        assert onnx_metrics["accuracy"] == torch_metrics["accuracy"]
        assert onnx_metrics["macro_f1"] == torch_metrics["macro_f1"]
        assert onnx_metrics["confusion_matrix"] == torch_metrics["confusion_matrix"]
        assert set(onnx_metrics["per_speaker"]) == {"spk0", "spk1", "spk2"}
