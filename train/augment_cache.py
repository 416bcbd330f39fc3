"""The features of every clip's augmented copies, cached beside the clean ones (see :mod:`train.wave_augment`).

One folder per (clean cache, augmentation settings, background files) under
``<cache_dir>/features/<clean key>-aug-<hash>/``, built like the clean cache (temporary folder,
flushed, renamed into place; a damaged one is set aside and built again)::

    features.npy   float32 (n_clips * copies, n_bins, n_frames): row i * copies + k is copy k of clip i
    valid.npy      bool, False for the copies of a clip that could not be read
    index.json     key inputs and shapes

Every clip is augmented, not only one split's: the copies then serve every split and every
cross-validation fold of the dataset, and validation and test rows are simply never drawn.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.hashing import stable_hash
from train.audio_io import BadAudioError, read_audio
from train.datasets.base import is_audio_file
from train.feature_cache import CacheJob, Extracted, FeatureCache, build_cache
from train.features import FeatureConfig, compute_features
from train.wave_augment import WaveAugmentConfig, augment_clip

AUGMENT_VERSION = 1


@dataclass(frozen=True)
class AugmentedCopies:
    """The memory-mapped features of every clip's copies.

    Attributes:
        x: float32 (n_clips * copies, n_bins, n_frames); row ``i * copies + k`` is copy ``k`` of clip ``i``.
        valid: Per row of ``x``.
        copies: Copies per clip.
        key: The cache folder's name.
        hit: Whether they were read from an existing cache.
    """

    x: np.ndarray
    valid: np.ndarray
    copies: int
    key: str
    hit: bool

    def rows(self, clips: np.ndarray, copy: np.ndarray) -> np.ndarray:
        """Rows of :attr:`x` holding copy ``copy`` (0-based) of each clip of ``clips``."""
        return np.asarray(clips, dtype=np.int64) * self.copies + np.asarray(copy, dtype=np.int64)


def background_files(folder: str | None) -> list[str]:
    """The audio files of a background-noise folder (sorted); [] for None.

    Raises:
        UserError: The folder does not exist or holds no audio file.
    """
    if folder is None:
        return []
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"train.wave_augment.background_dir {root} is not a folder of audio files")
    files = sorted(str(p) for p in root.rglob("*") if p.is_file() and is_audio_file(p))
    if not files:
        raise UserError(f"train.wave_augment.background_dir {root} holds no audio file (.wav, .flac, .ogg, ...)")
    return files


def augment_key(clean_key: str, aug: WaveAugmentConfig, background: list[str]) -> str:
    """The folder name of the copies: the clean cache's key, the settings and the background files' stamps."""
    stamps = []
    for path in background:
        st = os.stat(path)
        stamps.append([path, st.st_size, st.st_mtime_ns])
    settings = dataclasses.asdict(aug) | {"background_dir": None}  # the files below stand for the folder
    digest = stable_hash({"version": AUGMENT_VERSION, "augment": settings, "background": stamps}, length=12)
    return f"{clean_key}-aug-{digest}"


@functools.lru_cache(maxsize=4)
def _read_background(paths: tuple[str, ...], sample_rate: int) -> tuple[np.ndarray, ...]:
    recordings = []
    for path in paths:
        try:
            recordings.append(read_audio(path, sample_rate))
        except BadAudioError:
            continue
    return tuple(recordings)


def _augment_chunk(
    items: list[tuple[str, int]], cfg: FeatureConfig, aug: WaveAugmentConfig, background: tuple[str, ...]
) -> list[Extracted]:
    noise = list(_read_background(background, cfg.sample_rate)) if background else None
    out: list[Extracted] = []
    for path, row in items:
        try:
            samples = read_audio(path, cfg.sample_rate)
        except BadAudioError as exc:
            out.append((None, str(exc), 0.0))
            continue
        waves = [augment_clip(samples, cfg.sample_rate, cfg.n_samples, aug, row, k, noise, cfg.crop)
                 for k in range(aug.copies)]  # fmt: skip
        copies = [compute_features(wave, cfg) for wave in waves]
        out.append((np.stack(copies), None, len(samples) / cfg.sample_rate))
    return out


def augmented_copies(
    paths: list[str], clean_key: str, cfg: FeatureConfig, aug: WaveAugmentConfig, cache_dir: str | Path,
    jobs: int = -1, progress: bool = True,
) -> AugmentedCopies:  # fmt: skip
    """The copies of every clip of ``paths`` (a dataset's rows), from the cache or made now.

    Args:
        paths: Audio file per dataset row, in row order.
        clean_key: Key of the clean feature cache of the same rows and settings.
        cfg: Feature settings (the copies are extracted exactly as the clean features).
        aug: Augmentation settings; ``aug.copies`` must be > 0.
        cache_dir: Root of the feature cache.
        jobs: joblib worker processes.
        progress: Show a bar while extracting.

    Raises:
        UserError: Settings the clips cannot hold (a shift of half the clip), a background folder
            without audio, waveform features (kept as samples: augment them in the model instead).
    """
    try:
        aug.check_clip(cfg.clip_seconds)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    background = tuple(background_files(aug.background_dir))
    if background and not _read_background(background, cfg.sample_rate):
        raise UserError(f"train.wave_augment.background_dir {aug.background_dir} holds no readable audio file")
    key = augment_key(clean_key, aug, list(background))
    index = {"augments": clean_key, "augment": dataclasses.asdict(aug), "features": dataclasses.asdict(cfg),
             "background": list(background)}  # fmt: skip
    job = CacheJob(key=key, items=[(p, i) for i, p in enumerate(paths)], extract=_augment_chunk, shape=cfg.shape,
                   desc=f"augmented copies (x{aug.copies})", index=index, rows_per_item=aug.copies,
                   extra=(aug, background), label=lambda item: item[0])  # fmt: skip
    cache: FeatureCache = build_cache(job, cfg, cache_dir, jobs, progress)
    return AugmentedCopies(cache.x, cache.valid, aug.copies, key, cache.hit)


def copies_for(features, aug: WaveAugmentConfig, jobs: int = 1, progress: bool = False) -> AugmentedCopies:
    """The augmented copies of every row of ``features`` (a :class:`train.feature_set.Features` read from a cache).

    Raises:
        UserError: The features were not read from a cache folder (copies are kept beside it), or
            they are raw waveforms, or see :func:`augmented_copies`.
    """
    if features.config.kind == "waveform":
        raise UserError("train.wave_augment makes feature copies of augmented audio; with features.kind waveform "
                        "the model reads samples: set train.wave_augment.copies to 0")  # fmt: skip
    if features.cache_folder is None:
        raise UserError("train.wave_augment needs features read from the feature cache (the copies are kept beside "
                        "it); these were built in memory")  # fmt: skip
    cache_dir = Path(features.cache_folder).parent.parent  # <cache_dir>/features/<key>
    return augmented_copies(features.paths, features.cache_key, features.config, aug, cache_dir, jobs, progress)
