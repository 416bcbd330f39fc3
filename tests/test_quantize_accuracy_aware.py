"""Accuracy-aware static INT8 on a model built to have one layer that quantizes badly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from common.errors import UserError
from quantize.accuracy_aware import accuracy_aware_static
from quantize.export import export_model
from quantize.int8 import quantize_static_int8
from quantize.onnx_graph import weight_precision
from quantize.ort_eval import onnx_logits

SHAPE = (1, 16, 16)
SENSITIVE = "/conv2/Conv"


class _Sensitive(nn.Module):
    """Three convs and a classifier; every output channel of conv2 has one weight of 200.

    Per-channel symmetric INT8 then gives conv2 a step of 200/127, which rounds all its ordinary
    weights (about 0.1) to zero. The big weights read a channel conv1 keeps near zero, so in fp32
    they barely matter; quantized, conv2 outputs little more than its bias, and so does the model.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 5)
        with torch.no_grad():
            self.conv1.weight[0] *= 1e-4
            self.conv1.bias[0] = 0.0
            self.conv2.weight[:, 0, 1, 1] = 200.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return self.fc(x.mean(dim=(2, 3)))


def _inputs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *SHAPE)) * rng.uniform(0.2, 3, (n, 1, 1, 1)) + rng.normal(0, 1, (n, 1, 1, 1))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory):
    """(fp32 path, calibration, val_x, val_y) with val_y the fp32 model's own predictions (fp32 accuracy 1.0)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("aa") / "sensitive.onnx"
    result = export_model(_Sensitive(), SHAPE, path, sample_inputs=_inputs(4, 0))
    val_x = _inputs(200, 2)
    val_y = onnx_logits(result.path, val_x).argmax(axis=1)
    assert len(np.unique(val_y)) >= 2
    return result.path, _inputs(32, 1), val_x, val_y


def test_plain_static_misses_the_bound_and_accuracy_aware_meets_it(sensitive, tmp_path):
    fp32, calibration, val_x, val_y = sensitive
    plain = quantize_static_int8(fp32, tmp_path / "plain.onnx", calibration)
    plain_drop = 1.0 - float(np.mean(onnx_logits(plain, val_x).argmax(axis=1) == val_y))
    max_drop = 0.02
    assert plain_drop > max_drop

    result = accuracy_aware_static(fp32, tmp_path / "aa.onnx", calibration, val_x, val_y, max_drop=max_drop)
    assert result.met and result.drop <= max_drop
    assert result.fp32_accuracy == 1.0
    assert result.kept_fp32 == [SENSITIVE]
    assert result.int8_accuracy == pytest.approx(float(np.mean(onnx_logits(result.path, val_x).argmax(1) == val_y)))
    precision = weight_precision(result.path)
    assert precision.pop(SENSITIVE) == "fp32" and set(precision.values()) == {"int8"}
    actions = [step["action"] for step in result.steps]
    assert actions[0] == "quantize_all" and actions[-1] == "keep_fp32" and actions.count("rank") == 4
    assert result.steps[0]["drop"] == pytest.approx(plain_drop)
    ranked = {s["node"]: s for s in result.steps if s["action"] == "rank"}
    assert max(ranked.values(), key=lambda s: (s["accuracy"], -s["logit_mse"]))["node"] == SENSITIVE


def test_a_bound_already_met_keeps_everything_int8(sensitive, tmp_path):
    fp32, calibration, val_x, val_y = sensitive
    result = accuracy_aware_static(fp32, tmp_path / "aa.onnx", calibration, val_x, val_y, max_drop=1.0)
    assert result.met and result.kept_fp32 == [] and len(result.steps) == 1
    assert set(weight_precision(result.path).values()) == {"int8"}


def test_max_steps_stops_the_search(sensitive, tmp_path):
    fp32, calibration, val_x, val_y = sensitive
    result = accuracy_aware_static(fp32, tmp_path / "aa.onnx", calibration, val_x, val_y, max_drop=0.0, max_steps=0)
    assert not result.met and result.kept_fp32 == [] and result.path.is_file()


def test_bad_arguments_are_user_errors(sensitive, tmp_path):
    fp32, calibration, val_x, val_y = sensitive
    with pytest.raises(UserError, match=r"max_drop must be an accuracy drop >= 0"):
        accuracy_aware_static(fp32, tmp_path / "aa.onnx", calibration, val_x, val_y, max_drop=-0.01)
    with pytest.raises(UserError, match=r"validation labels must be 200 class indices"):
        accuracy_aware_static(fp32, tmp_path / "aa.onnx", calibration, val_x, val_y[:10], max_drop=0.01)
    with pytest.raises(UserError, match=r"validation data must have shape \(n, 1, 16, 16\)"):
        accuracy_aware_static(fp32, tmp_path / "aa.onnx", calibration, val_x[:, 0], val_y, max_drop=0.01)
    assert not (tmp_path / "aa.onnx").exists()
