"""Which clips the search read: ``nas/search_data.json``, and their share of a cross-validation fold's test clips.

The search trains its proxies on the run's train split and scores them on its validation split;
it never reads the test split. The record states that in counts and, where the split is by
speaker or by official fold, by those groups, so a paper can say what the architecture was chosen on. A later
cross-validation of the survivors (:mod:`pipeline.cv_stage`) uses :func:`search_read_rows` to say,
fold by fold, how many of the fold's test clips the search had read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_write_json
from train.feature_set import Features

FILE = "search_data.json"
MAX_LISTED = 24  # groups listed by name per split; more are counted


def _groups(clips, column: str, split: str) -> list[str] | int | None:
    """The distinct speakers (or folds) of a split: listed, counted when many, None when the dataset has none."""
    values = clips.loc[clips["split"] == split, column]
    if values.empty or (values == "").any():
        return None
    unique = sorted(set(values), key=lambda v: (len(v), v))
    return unique if len(unique) <= MAX_LISTED else len(unique)


def search_data_record(run_dir: Path, features: Features, proxy_train_clips: int) -> dict[str, Any]:
    """What the search reads, from the run folder's data record (``data/clips.csv``).

    Args:
        run_dir: The run folder (its features stage has run).
        features: The run's features (their split and fingerprint).
        proxy_train_clips: Train clips each proxy training draws (``nas.proxy.subset_size``).
    """
    import pandas as pd

    clips = pd.read_csv(Path(run_dir) / "data" / "clips.csv", dtype=str, keep_default_na=False)
    splits = features.splits
    record: dict[str, Any] = {
        "split_protocol": splits.protocol,
        "data_fingerprint": features.fingerprint,
        "train_clips": len(splits.train),
        "proxy_train_clips": proxy_train_clips,
        "validation_clips": len(splits.val),
        "test_clips_never_read": len(splits.test),
    }
    for column, label in (("speaker", "speakers"), ("fold", "folds")):
        test = set(clips.loc[clips["split"] == "test", column])
        seen = set(clips.loc[clips["split"].isin(["train", "val"]), column])
        if test & seen:
            continue  # the split is not by this grouping: listing it would say nothing
        groups = {name: _groups(clips, column, name) for name in ("train", "val", "test")}
        if all(g is not None for g in groups.values()):
            record[label] = {"train": groups["train"], "validation": groups["val"], "test": groups["test"]}
    return record


def write_search_data(run_dir: Path, features: Features, proxy_train_clips: int) -> dict[str, Any]:
    """Write ``nas/search_data.json`` (atomically) and return it; see :func:`search_data_record`.

    A folder already holding the same record is left untouched: a resume that is then refused
    (:func:`pipeline.run_folder.undo_failed_start`) must find nothing of its own written.
    """
    record = search_data_record(run_dir, features, proxy_train_clips)
    if read_search_data(run_dir) != json.loads(json.dumps(record)):
        atomic_write_json(Path(run_dir) / "nas" / FILE, record)
    return record


def _names(groups: list[str] | int) -> str:
    return f"{groups} groups" if isinstance(groups, int) else ", ".join(groups)


def search_data_line(record: dict[str, Any]) -> str:
    """One line: the clips the search trains and scores on, and the test clips it never reads."""
    proxy = record["proxy_train_clips"]
    subset = f" (each proxy draws {proxy})" if proxy < record["train_clips"] else ""
    line = (f"search data: {record['train_clips']} train clips{subset} and {record['validation_clips']} validation "
            f"clips of the run's split ({record['split_protocol']}); its {record['test_clips_never_read']} test clips "
            "are never read by the search")  # fmt: skip
    for label in ("speakers", "folds"):
        if label in record:
            held = record[label]
            line += (f"; {label}: train {_names(held['train'])} | validation {_names(held['validation'])} | "
                     f"test {_names(held['test'])}")  # fmt: skip
    return line


def read_search_data(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``nas/search_data.json``, or None when it has none (no search, or one from before the record)."""
    try:
        record = json.loads((Path(run_dir) / "nas" / FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def search_read_rows(run_dir: Path, features: Features) -> np.ndarray | None:
    """Per clip of the dataset, whether the search read it (train or validation of the run's split).

    The run folder's data record cannot change once a search was made from it
    (:data:`pipeline.data_stage.RESULTS_OF_DATA`), so the run's split is the one the search read;
    the record's fingerprint confirms it. None when the run has no record of its search's data,
    or the record is of other data.
    """
    record = read_search_data(run_dir)
    if record is None or record.get("data_fingerprint") != features.fingerprint:
        return None
    read = np.zeros(len(features.y), dtype=bool)
    read[features.splits.train] = True
    read[features.splits.val] = True
    return read
