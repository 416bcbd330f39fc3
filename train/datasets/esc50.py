"""ESC-50: ``meta/esc50.csv`` and ``audio/*.wav`` (5 official folds)."""

from __future__ import annotations

from pathlib import Path

from train.datasets.base import AudioDataset, Clip
from train.datasets.metadata import RowChecks, read_metadata_csv
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
    checks = RowChecks(root / _META, folds=range(1, 6))
    for line, row in enumerate(meta.to_dict("records"), start=2):
        fold = checks.fold(row["fold"], line)
        label = checks.label(row["category"], line)
        path = root / "audio" / row["filename"]
        checks.once(path, row["filename"], line)
        if not path.is_file():
            missing.append((path, "listed in metadata but not found"))
            continue
        speaker = f"src{row['src_file']}" if has_src else None
        clips.append(Clip(path=path, label=label, speaker=speaker, fold=fold))
    clips.sort(key=lambda c: str(c.path))
    return AudioDataset("esc50", root, clips, missing, metadata=root / _META)
