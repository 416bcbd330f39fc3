"""The features stage: load a dataset, extract cached features, split, normalise, report skips."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_json, atomic_write_text
from common.errors import UserError
from common.folders import check_writable_folder
from pipeline.config import PipelineConfig
from train.datasets import AudioDataset, load_dataset
from train.datasets.registry import dataset_root
from train.datasets.synthetic import generate_synthetic
from train.feature_cache import extract_features
from train.feature_set import Features
from train.features import FeatureConfig
from train.normalization import compute_normalization
from train.splits import make_splits

log = logging.getLogger(__name__)


def check_data_inputs(cfg: PipelineConfig) -> None:
    """The cheap checks of the data stage, for stages that run other checks before it (nothing is read).

    Raises:
        UserError: The cache folder cannot be written, a real dataset has no path, or its path does not exist.
    """
    check_writable_folder(cfg.cache_dir, "--cache-dir", "feature cache")
    data = cfg.data
    if data.dataset == "synthetic" and data.path is None:
        return
    if data.path is None:
        raise UserError(f"dataset '{data.dataset}' needs --dataset-path pointing at its root folder")
    dataset_root(data.path)


def resolve_dataset(cfg: PipelineConfig) -> AudioDataset:
    """Load the configured dataset; the built-in synthetic data is generated on first use.

    Raises:
        UserError: See :func:`check_data_inputs`, or any loader error.
    """
    data = cfg.data
    check_data_inputs(cfg)
    if data.dataset == "synthetic" and data.path is None:
        return load_dataset(generate_synthetic(data.synthetic, cfg.cache_dir), "synthetic")
    name = None if data.dataset == "auto" else data.dataset
    return load_dataset(data.path, name, allow_outside=data.allow_outside_paths)


def _csv_text(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _check_bad_share(
    skipped: list[tuple[str, str]], n_total: int, cfg: PipelineConfig, run_dir: Path, listed: bool = True
) -> None:
    share = len(skipped) / max(n_total, 1)
    if share > cfg.data.max_bad_fraction:
        where = f"see {run_dir / 'skipped_files.csv'} " if listed else ""  # not written over another run's list
        raise UserError(
            f"{len(skipped)} of {n_total} audio files ({share:.1%}) could not be used, more than "
            f"data.max_bad_fraction={cfg.data.max_bad_fraction:.1%}; {where}"
            f"(first: {skipped[0][0]}: {skipped[0][1]})"
        )


def _warn_cropped(durations: dict, n_valid: int, features: FeatureConfig) -> None:
    """Say so when the fixed clip length leaves out part of many files (ESC-50 clips are 5 s)."""
    n_cropped = int(durations.get("n_cropped", 0))
    if n_valid and n_cropped / n_valid >= 0.1:
        log.warning(
            "%d of %d clips are longer than features.clip_seconds=%g s (median %.2f s, longest %.2f s) and were "
            "cropped to it (features.crop=%s); set features.clip_seconds in a --config file to use more of each clip",
            n_cropped, n_valid, features.clip_seconds, durations["median_s"], durations["max_s"], features.crop,
        )  # fmt: skip


def _warn_absent_classes(classes: list[str], y: np.ndarray, splits) -> None:
    """Say which classes have no clip in a split: its scores then average over fewer classes than the dataset has."""
    for name in ("train", "val", "test"):
        present = set(np.unique(y[splits[name]]).tolist())
        absent = [c for i, c in enumerate(classes) if i not in present]
        if absent:
            shown = ", ".join(absent[:10])
            log.warning("%d class(es) have no clip in the %s split (%s): %s; its macro-F1 averages the other %d",
                        len(absent), name, splits.protocol, shown, len(classes) - len(absent))  # fmt: skip


def prepare_features(cfg: PipelineConfig, run_dir: Path) -> Features:
    """Run the features stage and write its outputs into ``run_dir``.

    Writes ``skipped_files.csv`` (every unusable file with its reason), ``data/clips.csv``
    (each clip's label, speaker, fold and split) and ``data/summary.json`` (counts, split
    protocol, feature shape, cache key, normalisation statistics).

    Raises:
        UserError: An unwritable cache folder, dataset problems, or more unusable files than
            ``data.max_bad_fraction``.
    """
    dataset = resolve_dataset(cfg)
    cache = extract_features(dataset, cfg.features, cfg.cache_dir, jobs=cfg.run.jobs, progress=cfg.run.progress)
    n_total = len(dataset.clips) + len(dataset.missing)
    held = held_data(run_dir)
    skipped_csv = _csv_text(["path", "reason"], [list(s) for s in cache.skipped])
    if held is None:  # the list the refusal below points at; a folder holding another run's data keeps its own
        atomic_write_text(run_dir / "skipped_files.csv", skipped_csv)
    _check_bad_share(cache.skipped, n_total, cfg, run_dir, listed=held is None)
    _warn_cropped(cache.durations, int(cache.valid.sum()), cfg.features)

    classes = dataset.classes
    y = np.array([classes.index(c.label) for c in dataset.clips], dtype=np.int64)
    splits = make_splits(dataset.clips, y, cache.valid, cfg.data)
    for name in ("train", "val", "test"):
        if len(splits[name]) == 0:
            raise UserError(f"the {name} split is empty ({splits.protocol}); the dataset is too small to split")
    _warn_absent_classes(classes, y, splits)
    norm = compute_normalization(cache.x, splits.train)
    speakers = np.array([c.speaker for c in dataset.clips], dtype=object) if dataset.has_speakers else None

    split_names = splits.name_of(len(dataset.clips))
    rows = [
        [str(c.path), c.label, c.speaker or "", "" if c.fold is None else c.fold, split_names[i]]
        for i, c in enumerate(dataset.clips)
    ]
    clips_csv = _csv_text(["path", "label", "speaker", "fold", "split"], rows)
    summary = {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "classes": classes,
        "n_files": n_total,
        "n_skipped": len(cache.skipped),
        "split_protocol": splits.protocol,
        "split_sizes": {name: len(splits[name]) for name in ("train", "val", "test")},
        "feature_shape": list(cache.x.shape[1:]),
        "durations": cache.durations,
        "cache_key": cache.key,
        "cache_hit": cache.hit,
        "cache_folder": str(cache.folder),
        "normalization": norm.to_dict(),
        "features": dataclasses.asdict(cfg.features),
    }
    features = Features(
        x=cache.x,
        y=y,
        classes=classes,
        splits=splits,
        normalization=norm,
        speakers=speakers,
        paths=[str(c.path) for c in dataset.clips],
        dataset=dataset.name,
        config=cfg.features,
        cache_key=cache.key,
        cache_hit=cache.hit,
        cache_folder=cache.folder,
    )
    summary["data_fingerprint"] = features.fingerprint
    if held is not None:
        _refuse_other_data(run_dir, held, summary)
        if same_record(held, summary):  # the same data, read the same way: the folder's record stays as it is
            return features
    atomic_write_text(run_dir / "data" / "clips.csv", clips_csv)
    atomic_write_json(run_dir / "data" / "summary.json", summary)
    return features


RESULTS_OF_DATA = ("nas/journal.jsonl", "nas/checkpoint.json", "nas/search.json", "models", "baseline_results.csv",
                   "quantization_results.csv", "cv", "cv_results.csv")  # fmt: skip


def held_data(run_dir: Path) -> dict | None:
    """The ``data/summary.json`` of a run folder whose search, models or results were made from it (else None)."""
    path = Path(run_dir) / "data" / "summary.json"
    if not path.is_file() or not any((Path(run_dir) / rel).exists() for rel in RESULTS_OF_DATA):
        return None
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: nothing to compare with (the stages that read it say so)
    return held if isinstance(held, dict) and held.get("data_fingerprint") else None


def same_record(held: dict, new: dict) -> bool:
    """Whether two ``summary.json`` records differ only in whether the cache was hit."""
    return {k: v for k, v in held.items() if k != "cache_hit"} == json.loads(
        json.dumps({k: v for k, v in new.items() if k != "cache_hit"})
    )


def _describe(summary: dict) -> str:
    shape = "x".join(str(n) for n in summary.get("feature_shape") or ())
    return f"{summary.get('dataset', '?')}, {summary.get('split_protocol', '?')}, features {shape}"


def _refuse_other_data(run_dir: Path, held: dict, new: dict) -> None:
    """A folder's results stay with the data they were made from: other data is refused before anything is written.

    Raises:
        UserError: Naming both datasets and split protocols.
    """
    if held["data_fingerprint"] == new["data_fingerprint"]:
        return
    raise UserError(
        f"{run_dir} holds results made from other data ({_describe(held)}) than this command's ({_describe(new)}); "
        "nothing was changed: use another --out, or drop the --dataset/--split/--config settings that differ"
    )
