"""Timing on real ONNX Runtime sessions: positive, ordered numbers; in-context op costs."""

from __future__ import annotations

import pytest
from torch import nn

from latency_tables.keys import parse_op_key
from latency_tables.layout import export_onnx
from latency_tables.measure import measure_onnx_latency, measure_torch_latency
from latency_tables.op_models import prepare
from latency_tables.ort_timing import TimingConfig, time_model

FAST = TimingConfig(sessions=2, runs=20, min_runs=5, target_ms=5)


def _cnn(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    )  # fmt: skip


def test_end_to_end_timing_is_positive_and_consistent():
    timing = measure_onnx_latency(_cnn(16), (1, 40, 101), FAST)
    assert timing.latency_ms > 0 and len(timing.session_medians_ms) == 2
    assert timing.latency_ms == min(timing.session_medians_ms) <= timing.median_ms <= timing.p90_ms * 1.5
    assert measure_torch_latency(_cnn(16), (1, 40, 101), FAST).latency_ms > 0


def test_wider_model_measures_slower_every_time():
    narrow, wide = export_onnx(_cnn(8), (1, 40, 101)), export_onnx(_cnn(64), (1, 40, 101))
    for _ in range(3):
        assert time_model(narrow, FAST).latency_ms < time_model(wide, FAST).latency_ms


def test_in_context_op_cost_grows_with_width():
    def cost(key):
        graphs = prepare(parse_op_key(key))
        return (
            time_model(graphs.model, FAST, "disable").latency_ms
            - time_model(graphs.reference, FAST, "disable").latency_ms
        )

    assert 0 < cost("conv_16x20x51_16_k3x3_s1_relu") < cost("conv_64x20x51_64_k3x3_s1_relu")


@pytest.mark.parametrize(("estimate_ms", "expected"), [(0.01, (10, 50)), (1.0, (5, 25)), (80.0, (1, 5))])
def test_adaptive_run_plan(estimate_ms, expected):
    assert TimingConfig().plan(estimate_ms) == expected


def test_timing_config_validation():
    with pytest.raises(ValueError, match=r"latency\.sessions"):
        TimingConfig(sessions=0)
    with pytest.raises(ValueError, match="min_runs"):
        TimingConfig(min_runs=60, runs=50)
