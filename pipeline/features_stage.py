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
    copies: str | None = None  # what train.wave_augment made or found, in words (None: off)


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> FeaturesResult:
    """Prepare the features of the configured dataset into ``run_dir`` (``resume`` changes nothing here)."""
    start = time.perf_counter()
    features = prepare_features(cfg, run_dir)
    wall_s = time.perf_counter() - start
    return FeaturesResult(features, wall_s, _copies(cfg, features))


def _copies(cfg: PipelineConfig, features: Features) -> str | None:
    """Make (or find) the augmented copies full training draws from, once, before training starts."""
    aug = cfg.train.wave_augment
    if not aug.enabled:
        return None
    from train.augment_cache import copies_for

    start = time.perf_counter()
    copies = copies_for(features, aug, jobs=cfg.run.jobs, progress=cfg.run.progress)
    how = "found in the cache" if copies.hit else "written"
    perturbations = (f"speed {aug.speed[0]:g}-{aug.speed[1]:g}, shift +-{aug.shift_s:g} s, gain "
                     f"{aug.gain_db[0]:g}..{aug.gain_db[1]:g} dB, noise on {aug.noise_prob:.0%} at "
                     f"{aug.snr_db[0]:g}-{aug.snr_db[1]:g} dB SNR")  # fmt: skip
    if aug.pitch_semitones != (0.0, 0.0):
        perturbations += f", pitch {aug.pitch_semitones[0]:g}..{aug.pitch_semitones[1]:g} semitones"
    wall_s = time.perf_counter() - start
    return f"augmented copies: {aug.copies} per clip ({perturbations}); {how} in {wall_s:.1f} s"


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
    ) + (f"\n{result.copies}" if result.copies else "")


def summary(result: FeaturesResult, run_dir: Path) -> list[str]:
    """The features line and where the outputs are."""
    return [
        features_line(result),
        f"results in {run_dir}/ (config.json, data/summary.json, data/clips.csv, skipped_files.csv)",
    ]
