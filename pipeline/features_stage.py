"""``--mode features``: extract (or load cached) features, split, normalise, and say what happened."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.data_stage import prepare_features
from train.feature_set import Features


@dataclass(frozen=True)
class FeaturesResult:
    """The prepared features and how long preparing them took."""

    features: Features
    wall_s: float


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> FeaturesResult:
    """Prepare the features of the configured dataset into ``run_dir`` (``resume`` changes nothing here)."""
    start = time.perf_counter()
    features = prepare_features(cfg, run_dir)
    return FeaturesResult(features, time.perf_counter() - start)


def features_line(result: FeaturesResult) -> str:
    """One line: dataset, clips, classes, shape, split sizes, skipped files, cache hit and time."""
    feats = result.features
    sizes = {name: len(feats.splits[name]) for name in ("train", "val", "test")}
    skipped = len(feats.paths) - sum(sizes.values())
    return (
        f"[{feats.dataset}] {sum(sizes.values())} clips, {feats.n_classes} classes, features "
        f"{feats.x.shape[1]}x{feats.x.shape[2]} ({feats.config.kind}); "
        f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']} ({feats.splits.protocol}); "
        f"{skipped} skipped; cache {'hit' if feats.cache_hit else 'written'} in {result.wall_s:.1f} s"
    )


def summary(result: FeaturesResult, run_dir: Path) -> list[str]:
    """The features line and where the outputs are."""
    return [
        features_line(result),
        f"results in {run_dir}/ (config.json, data/summary.json, data/clips.csv, skipped_files.csv)",
    ]
