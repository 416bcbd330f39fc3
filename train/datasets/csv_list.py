"""A plain CSV manifest: ``file_path,label[,speaker][,fold][,split]``, paths relative to the CSV."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError
from train.datasets.base import AudioDataset, Clip
from train.datasets.metadata import RowChecks, read_metadata_csv
from train.datasets.registry import register_dataset

DEFAULT_NAME = "metadata.csv"
SPLIT_NAMES = {  # accepted ``split`` cells (compared case-insensitively, spaces stripped) -> split
    "train": "train",
    "training": "train",
    "val": "val",
    "validation": "val",
    "valid": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def manifest_path(root: Path) -> Path:
    """The CSV file itself, or ``metadata.csv`` inside a folder."""
    return root if root.is_file() else root / DEFAULT_NAME


def parse_split(value: str | None, line: int, path: Path) -> str | None:
    """The split named by a ``split`` cell: ``train``, ``val``, ``test``, or None for an empty cell.

    Case and surrounding spaces are ignored; ``training``, ``validation``/``valid``/``dev`` and
    ``testing`` are accepted as aliases. An empty cell leaves the clip to the protocol (with
    ``data.split=official`` it trains, like any clip not listed as val or test).

    Args:
        value: The cell.
        line: Its line number in the file (the header is line 1), for the message.
        path: The CSV file, for the message.

    Raises:
        UserError: Any other value; the message names the file, the line, the value and the
            accepted values.
    """
    text = (value or "").strip().lower()
    if not text:
        return None
    if text in SPLIT_NAMES:
        return SPLIT_NAMES[text]
    accepted = ", ".join(SPLIT_NAMES)
    raise UserError(
        f"metadata file {path}, line {line}: split '{value}' is not a split name; accepted values (any case): "
        f"{accepted}, or an empty cell"
    )


@register_dataset(
    "csv",
    detect=lambda root: manifest_path(root).is_file() and manifest_path(root).suffix.lower() == ".csv",
    generic=True,
    expected="a CSV file (or a folder holding metadata.csv) with columns file_path,label[,speaker][,fold][,split]",
)
def load_csv(root: Path) -> AudioDataset:
    """Load clips listed in a CSV; optional ``speaker``, ``fold`` and ``split`` columns are used.

    Raises:
        UserError: Missing columns, an empty label, a file listed twice, a non-integer ``fold`` or
            an unknown ``split`` value (see :func:`parse_split`).
    """
    csv_path = manifest_path(root)
    meta = read_metadata_csv(csv_path, ["file_path", "label"])
    base = csv_path.parent
    clips, missing = [], []
    checks = RowChecks(csv_path)
    for line, row in enumerate(meta.to_dict("records"), start=2):
        split = parse_split(row.get("split"), line, csv_path)
        label = checks.label(row["label"], line)
        path = Path(os.path.normpath(base / row["file_path"]))  # as written: symlinks are judged by their place
        checks.once(path, row["file_path"], line)
        if not path.is_file():
            missing.append((path, "listed in metadata but not found"))
            continue
        fold = checks.fold(row["fold"], line) if row.get("fold") else None
        clips.append(Clip(path, label, row.get("speaker") or None, fold, split))
    clips.sort(key=lambda c: str(c.path))
    return AudioDataset("csv", csv_path, clips, missing, metadata=csv_path)
