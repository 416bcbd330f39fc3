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


def _groups(clips, column: str, split: str) -> list[str] | int:
    """The distinct speakers (or folds) of a split: listed, or counted when many."""
    values = clips.loc[clips["split"] == split, column]
    unique = sorted(set(values), key=lambda v: (len(v), v))
    return unique if len(unique) <= MAX_LISTED else len(unique)


def _grouping(protocol: str) -> tuple[str, str] | None:
    """(clips.csv column, record field) of what the split was made by: speakers or official folds; else None."""
    if protocol.startswith("speaker-disjoint"):
        return "speaker", "speakers"
    if protocol.startswith("official (folds"):
        return "fold", "folds"
    return None  # stratified, or official lists: no grouping to name


def search_data_record(run_dir: Path, features: Features, proxy_train_clips: int) -> dict[str, Any]:
    """What the search reads, from the run folder's data record (``data/clips.csv``).

    Args:
        run_dir: The run folder (its features stage has run).
        features: The run's features (their split and fingerprint).
        proxy_train_clips: Train clips each proxy training draws (``nas.proxy.subset_size``).
    """
    splits = features.splits
    record: dict[str, Any] = {
        "split_protocol": splits.protocol,
        "data_fingerprint": features.fingerprint,
        "train_clips": len(splits.train),
        "proxy_train_clips": proxy_train_clips,
        "validation_clips": len(splits.val),
        "test_clips_never_read": len(splits.test),
    }
    grouping = _grouping(splits.protocol)
    if grouping is not None:
        import pandas as pd

        column, label = grouping
        clips = pd.read_csv(Path(run_dir) / "data" / "clips.csv", dtype=str, keep_default_na=False)
        record[label] = {key: _groups(clips, column, name) for key, name in
                         (("train", "train"), ("validation", "val"), ("test", "test"))}  # fmt: skip
    return record


def write_search_data(run_dir: Path, record: dict[str, Any]) -> None:
    """Write ``nas/search_data.json`` (atomically): ``record``, from :func:`search_data_record`.

    Call it once the engine has accepted the start (a refused start writes nothing of its own:
    :func:`pipeline.run_folder.undo_failed_start`); the same record already there is left untouched.
    """
    if read_search_data(run_dir) != json.loads(json.dumps(record)):
        atomic_write_json(Path(run_dir) / "nas" / FILE, record)


def _names(groups: list[str] | int) -> str:
    return f"{groups} groups" if isinstance(groups, int) else ", ".join(groups)


def search_data_line(record: dict[str, Any], counts: bool = True) -> str:
    """One line: the clips the search trains and scores on, and the test clips it never reads.

    Args:
        record: From :func:`search_data_record`.
        counts: Name the train and validation counts (the search's first line already does).
    """
    line = "search data: "
    if counts:
        proxy = record["proxy_train_clips"]
        subset = f" (each proxy draws {proxy})" if proxy < record["train_clips"] else ""
        line += f"{record['train_clips']} train clips{subset} and {record['validation_clips']} validation clips of "
    line += (f"the run's split ({record['split_protocol']}); its {record['test_clips_never_read']} test clips are "
             "never read by the search")  # fmt: skip
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


def _search_fingerprint(run_dir: Path) -> str | None:
    """The data fingerprint the search was made from: ``nas/search_data.json``, else the engine's ``nas/search.json``.

    The engine writes ``search.json`` once a start is accepted (runs from before ``search_data.json``
    have it too); the problem's settings hold the fingerprint as ``data``.
    """
    record = read_search_data(run_dir)
    if record is not None and record.get("data_fingerprint"):
        return record["data_fingerprint"]
    try:
        settings = json.loads((Path(run_dir) / "nas" / "search.json").read_text())["settings"]
        return settings["problem"]["describe"]["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def search_read_rows(run_dir: Path, features: Features) -> np.ndarray | None:
    """Per clip of the dataset, whether the search read it (train or validation of the run's split).

    The run folder's data record cannot change once a search was made from it
    (:data:`pipeline.data_stage.RESULTS_OF_DATA`), so the run's split is the one the search read;
    the search's data fingerprint confirms it. None when the run holds no search, or one made
    from other data.
    """
    if _search_fingerprint(run_dir) != features.fingerprint:
        return None
    read = np.zeros(len(features.y), dtype=bool)
    read[features.splits.train] = True
    read[features.splits.val] = True
    return read
