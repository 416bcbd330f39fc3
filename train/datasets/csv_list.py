"""A plain CSV manifest: ``file_path,label[,speaker][,fold]``, paths relative to the CSV."""

from __future__ import annotations

from pathlib import Path

from train.datasets.base import AudioDataset, Clip
from train.datasets.metadata import parse_int, read_metadata_csv
from train.datasets.registry import register_dataset

DEFAULT_NAME = "metadata.csv"


def manifest_path(root: Path) -> Path:
    """The CSV file itself, or ``metadata.csv`` inside a folder."""
    return root if root.is_file() else root / DEFAULT_NAME


@register_dataset(
    "csv",
    detect=lambda root: manifest_path(root).is_file() and manifest_path(root).suffix.lower() == ".csv",
    generic=True,
    expected="a CSV file (or a folder holding metadata.csv) with columns file_path,label[,speaker][,fold]",
)
def load_csv(root: Path) -> AudioDataset:
    """Load clips listed in a CSV; optional ``speaker``, ``fold`` and ``split`` columns are used."""
    csv_path = manifest_path(root)
    meta = read_metadata_csv(csv_path, ["file_path", "label"])
    base = csv_path.parent
    clips, missing = [], []
    for row in meta.to_dict("records"):
        path = (base / row["file_path"]).resolve()
        if not path.is_file():
            missing.append((path, "listed in metadata but not found"))
            continue
        fold = parse_int(row["fold"], "fold", csv_path) if row.get("fold") else None
        split = row.get("split") or None
        clips.append(Clip(path, str(row["label"]), row.get("speaker") or None, fold, split))
    clips.sort(key=lambda c: str(c.path))
    return AudioDataset("csv", csv_path, clips, missing)
