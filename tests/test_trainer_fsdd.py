"""Real training on the Free Spoken Digit Dataset features (slow: extraction plus a few epochs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.config import build_config
from pipeline.data_stage import prepare_features
from train.evaluate import evaluate_model
from train.train_config import TrainConfig
from train.trainer import train_model


def small_cnn(n_classes: int) -> nn.Module:
    """About 40k parameters on (B, 1, 40, 101) log-mel input."""

    def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16, 1),
        *block(16, 32, 2),
        *block(32, 48, 2),
        *block(48, 48, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(48, n_classes),
    )


@pytest.mark.slow
def test_fsdd_small_cnn_reaches_high_test_accuracy(tmp_path, fsdd_path):
    run = {"cache_dir": str(tmp_path / "cache"), "progress": False}
    overrides = {"data": {"dataset": "fsdd", "path": str(fsdd_path)}, "run": run}
    cfg = build_config(None, overrides)
    features = prepare_features(cfg, tmp_path / "run")
    assert features.x.shape[1:] == (40, 101) and features.n_classes == 10
    model = small_cnn(features.n_classes)
    assert 35_000 < sum(p.numel() for p in model.parameters()) < 45_000
    result = train_model(
        model,
        features,
        TrainConfig(epochs=8, num_threads=torch.get_num_threads(), progress=False),
        out_dir=tmp_path / "model",
        spec="fsdd-small",
    )
    assert result.best_val_accuracy > 0.8
    test = evaluate_model(model, features, "test")
    assert test["accuracy"] > 0.8, test["accuracy"]  # chance is 0.1
    assert len(test["per_speaker"]) == 6
