"""ESC-50: ``meta/esc50.csv`` and ``audio/*.wav`` (5 official folds)."""

from __future__ import annotations

from pathlib import Path

from train.datasets.base import AudioDataset, Clip
from train.datasets.metadata import parse_int, read_metadata_csv
from train.datasets.registry import register_dataset

_META = Path("meta/esc50.csv")


@register_dataset(
    "esc50",
    detect=lambda root: (root / _META).is_file(),
    expected="meta/esc50.csv and audio/*.wav",
)
def load_esc50(root: Path) -> AudioDataset:
    """Load ESC-50; the freesound source clip (``src_file``) is the group used as speaker."""
    meta = read_metadata_csv(root / _META, ["filename", "fold", "category"])
    has_src = "src_file" in meta.columns
    clips, missing = [], []
    for row in meta.to_dict("records"):
        path = root / "audio" / row["filename"]
        if not path.is_file():
            missing.append((path, "listed in metadata but not found"))
            continue
        speaker = f"src{row['src_file']}" if has_src else None
        fold = parse_int(row["fold"], "fold", root / _META)
        clips.append(Clip(path=path, label=row["category"], speaker=speaker, fold=fold))
    clips.sort(key=lambda c: str(c.path))
    return AudioDataset("esc50", root, clips, missing, metadata=root / _META)
