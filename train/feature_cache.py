"""Extract features once, in parallel, into a memory-mapped cache keyed by files and settings.

Cache layout (one folder per key under ``<cache_dir>/features/``)::

    <key>/features.npy   float32 (n_clips, n_bins, n_frames), row i = dataset.clips[i]
    <key>/valid.npy      bool (n_clips,), False for files that could not be read
    <key>/index.json     key inputs, shapes, and the skipped files with their reasons

The key hashes the clip paths with their sizes and modification times, plus every
:class:`FeatureConfig` field, so a changed, added or removed file or a changed setting gives a
new key. The folder is built under a temporary name (``.tmp-<key>-*``), flushed to disk and renamed
into place when complete; temporary folders left by a killed run are removed by the next one once
they are an hour old (:mod:`train.tmp_dirs`). A cache folder whose files do not match its index
(a disk fault, a hand edit) is moved aside with a warning and extracted again.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from common.atomic import fsync_path, make_temp_folder
from common.errors import UserError
from common.hashing import stable_hash
from common.progress import progress as progress_bar
from common.workers import ParentBound, worker_count
from train.audio_io import BadAudioError, fix_length, read_audio
from train.datasets.base import AudioDataset
from train.features import FeatureConfig, compute_features
from train.tmp_dirs import TMP_PREFIX, remove_stale_tmp_dirs, touch

CACHE_VERSION = 2  # 2: index.json records the files' durations
log = logging.getLogger(__name__)
CHUNK_SIZE = 64  # files per parallel task


@dataclass
class FeatureCache:
    """Features of every clip of a dataset, memory-mapped from the cache.

    Attributes:
        x: float32 memmap of shape (n_clips, n_bins, n_frames); rows of invalid clips are zero.
        valid: Which rows hold features (False: the file was skipped).
        skipped: (path, reason) for every file that was skipped, incl. files listed but missing.
        key: The cache key (folder name).
        folder: The cache folder.
        hit: True when the features were loaded from an existing cache.
        durations: Of the readable files: ``n_cropped`` (longer than the clip length, so
            cropped to it as ``features.crop`` says), ``median_s``, ``max_s``.
    """

    x: np.ndarray
    valid: np.ndarray
    skipped: list[tuple[str, str]]
    key: str
    folder: Path
    hit: bool
    durations: dict[str, float | int]


def cache_key(dataset: AudioDataset, cfg: FeatureConfig) -> str:
    """Hash of (clip paths + sizes + mtimes, feature settings, cache version)."""
    files = []
    for clip in dataset.clips:
        try:
            st = os.stat(clip.path)
            files.append([str(clip.path), st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([str(clip.path), -1, -1])
    return stable_hash({"version": CACHE_VERSION, "features": dataclasses.asdict(cfg), "files": files}, length=20)


Extracted = tuple[np.ndarray | None, str | None, float]  # features or None, reason if None, duration in s


def extract_file(path: str, cfg: FeatureConfig) -> Extracted:
    """Features of one audio file exactly as the cache holds them (read, resample, crop/pad, features).

    Returns:
        ``(features, None, duration_s)``, or ``(None, reason, 0.0)`` for an unusable file.
    """
    try:
        samples = read_audio(path, cfg.sample_rate)
    except BadAudioError as exc:
        return None, str(exc), 0.0
    fixed = fix_length(samples, cfg.n_samples, cfg.crop, cfg.sample_rate)
    return compute_features(fixed, cfg), None, len(samples) / cfg.sample_rate


def _extract_chunk(paths: list[str], cfg: FeatureConfig) -> list[Extracted]:
    return [extract_file(p, cfg) for p in paths]


def _durations(seconds: list[float], cfg: FeatureConfig) -> dict[str, float | int]:
    """What the fixed clip length did to the files: how many were cropped (any sample left out), and their length."""
    values = np.asarray(seconds, dtype=np.float64)
    if not len(values):
        return {"n_cropped": 0, "median_s": 0.0, "max_s": 0.0}
    return {
        "n_cropped": int((np.round(values * cfg.sample_rate) > cfg.n_samples).sum()),
        "median_s": round(float(np.median(values)), 3),
        "max_s": round(float(values.max()), 3),
    }


class DamagedCacheError(Exception):
    """A cache folder whose files do not match its index (a disk fault, or edited by hand)."""


def _load(folder: Path, key: str, missing: list[tuple[str, str]]) -> FeatureCache:
    try:
        index = json.loads((folder / "index.json").read_text())
        expected = (index["n_clips"], *index["shape"])
        x = np.load(folder / "features.npy", mmap_mode="r")
        valid = np.load(folder / "valid.npy")
        skipped = [(s[0], s[1]) for s in index["skipped"]]
        durations = dict(index["durations"])
    except PermissionError:  # another user's entry: not damaged, just not ours to read
        raise UserError(f"feature cache {folder} is not readable by this user; ask its owner to make it readable "
                        "(chmod -R a+rX), or use another --cache-dir") from None  # fmt: skip
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DamagedCacheError(f"{type(exc).__name__}: {exc}") from None
    if index.get("key") != key or x.shape != expected or x.dtype != np.float32 or valid.shape != expected[:1]:
        raise DamagedCacheError(f"features {x.shape} {x.dtype}, valid {valid.shape}, index says {expected}")
    return FeatureCache(x, valid, missing + skipped, key, folder, hit=True, durations=durations)


def _allocate(path: Path, root: Path) -> None:
    """Reserve a memory-mapped file's blocks now: a sparse file on a full disk dies later by SIGBUS, with no message.

    Raises:
        UserError: Not enough space, naming the folder and the space needed.
    """
    size = path.stat().st_size
    try:
        with path.open("r+b") as f:
            os.posix_fallocate(f.fileno(), 0, size)
    except AttributeError:  # pragma: no cover - platforms without posix_fallocate
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return  # a file system that cannot preallocate (the write itself reports a full disk)
        free_mib = shutil.disk_usage(root).free / 2**20
        need = f"it needs {size / 2**20:.0f} MiB, {free_mib:.0f} MiB are free"
        message = f"no space for the feature cache in {root}: {need}; free some space or use another --cache-dir"
        raise UserError(message) from None


def _set_aside(folder: Path, key: str, reason: str, inode: int) -> None:
    """Rename a damaged cache folder out of the way (removed later with the stale build folders).

    Only the folder that was found damaged (``inode``) is moved: another run may have moved it
    already, or put a fresh build in its place.
    """
    try:
        if folder.stat().st_ino != inode:
            return
        aside = make_temp_folder(folder.parent, f"{TMP_PREFIX}{key}-damaged-")
    except FileNotFoundError:
        return
    except PermissionError:
        raise UserError(f"feature cache {folder} is damaged ({reason}) and this user cannot move it aside; remove it "
                        "(or ask its owner to), or use another --cache-dir") from None  # fmt: skip
    try:
        os.replace(folder, aside / "cache")
    except FileNotFoundError:
        aside.rmdir()
        return
    except OSError as exc:  # another user's folder: nothing is half-moved
        aside.rmdir()
        raise UserError(f"feature cache {folder} is damaged ({reason}) and cannot be moved aside ({exc.strerror}); "
                        "remove it (or ask its owner to), or use another --cache-dir") from None  # fmt: skip
    log.warning("feature cache %s was damaged (%s); moved aside and extracting again", folder, reason)


def extract_features(
    dataset: AudioDataset,
    cfg: FeatureConfig,
    cache_dir: str | Path,
    jobs: int = -1,
    progress: bool = True,
) -> FeatureCache:
    """Features of every clip of ``dataset``, from the cache or freshly extracted into it.

    Args:
        dataset: The loaded dataset; row i of the result belongs to ``dataset.clips[i]``.
        cfg: Feature settings.
        cache_dir: Root of the cache (features go under ``<cache_dir>/features/<key>``).
        jobs: joblib worker processes (-1: all cores; 1: in this process).
        progress: Show a tqdm bar while extracting.

    Returns:
        The memory-mapped features, validity mask and skipped files.
    """
    paths = [str(c.path) for c in dataset.clips]
    index = {"dataset": dataset.name, "root": str(dataset.root), "features": dataclasses.asdict(cfg)}
    job = CacheJob(key=cache_key(dataset, cfg), items=paths, extract=_extract_chunk, shape=cfg.shape,
                   desc=f"features ({dataset.name})", index=index)  # fmt: skip
    missing = [(str(p), reason) for p, reason in dataset.missing]
    return build_cache(job, cfg, cache_dir, jobs, progress, missing)


@dataclass(frozen=True)
class CacheJob:
    """What one cache folder holds: its key, the work items, how a chunk of them is extracted.

    ``extract(items, cfg, *extra)`` returns one :data:`Extracted` per item, whose features have
    ``rows_per_item`` rows of ``shape`` (stacked on a first axis when more than one); item ``i``
    fills cache rows ``i * rows_per_item`` onwards. ``label(item)`` names an item in the skipped list.
    """

    key: str
    items: list
    extract: Callable[..., list[Extracted]]
    shape: tuple[int, ...]
    desc: str
    index: dict
    rows_per_item: int = 1
    extra: tuple = ()
    label: Callable[[Any], str] = str


def build_cache(
    job: CacheJob, cfg: FeatureConfig, cache_dir: str | Path, jobs: int, progress: bool,
    missing: list[tuple[str, str]] | None = None,
) -> FeatureCache:  # fmt: skip
    """Load the cache folder of ``job`` or extract it into a temporary folder and rename it into place."""
    key = job.key
    root = Path(cache_dir) / "features"
    folder = root / key
    missing = missing or []
    remove_stale_tmp_dirs(root)  # left by killed runs; never a young one another run may be writing
    if folder.exists():
        inode = folder.stat().st_ino
        try:
            return _load(folder, key, missing)
        except DamagedCacheError as exc:
            _set_aside(folder, key, str(exc), inode)

    root.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_folder(root, f"{TMP_PREFIX}{key}-")
    try:
        _write(tmp, job, cfg, root, jobs, progress)
        try:
            os.replace(tmp, folder)
            fsync_path(root)
        except OSError:  # a concurrent run completed the same key first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        cache = _load(folder, key, missing)
    except DamagedCacheError as exc:  # replaced or damaged by another run since it was written
        raise UserError(
            f"feature cache {folder} changed while this run built it ({exc}); another run may be using it: run again"
        ) from None
    cache.hit = False
    return cache


def _write(tmp: Path, job: CacheJob, cfg: FeatureConfig, root: Path, jobs: int, progress: bool) -> None:
    """Extract every item of ``job`` into ``tmp`` (features.npy, valid.npy, index.json), flushed to disk."""
    k = job.rows_per_item
    n_items = len(job.items)
    n = n_items * k
    x = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float32, shape=(n, *job.shape))
    _allocate(tmp / "features.npy", root)
    valid = np.zeros(n, dtype=bool)
    skipped: list[tuple[str, str]] = []  # unreadable files (missing ones are added on load)
    chunks = [job.items[i : i + CHUNK_SIZE] for i in range(0, n_items, CHUNK_SIZE)]
    n_jobs = 1 if len(chunks) <= 1 else worker_count(jobs, len(chunks), f"chunks of {CHUNK_SIZE} files")
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(ParentBound(job.extract))(chunk, cfg, *job.extra) for chunk in chunks
    )
    bar = progress_bar(total=n_items, desc=job.desc, unit="file", disable=not progress)
    item = 0
    seconds: list[float] = []
    for chunk_result in results:
        for feats, reason, duration_s in chunk_result:
            if feats is None:
                skipped.append((job.label(job.items[item]), reason))
            else:
                x[item * k : (item + 1) * k] = feats.reshape(k, *job.shape)
                valid[item * k : (item + 1) * k] = True
                seconds.append(duration_s)
            item += 1
        bar.update(len(chunk_result))
        touch(tmp)  # still being written: not stale for other runs
    bar.close()
    x.flush()
    del x
    np.save(tmp / "valid.npy", valid)
    index = {"version": CACHE_VERSION, "key": job.key, **job.index, "n_clips": n, "shape": list(job.shape),
             "skipped": skipped, "durations": _durations(seconds, cfg)}  # fmt: skip
    (tmp / "index.json").write_text(json.dumps(index, indent=1))
    for written in ("features.npy", "valid.npy", "index.json", "."):  # on disk before the folder counts
        fsync_path(tmp / written)
