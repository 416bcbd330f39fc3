"""UrbanSound8K: ``metadata/UrbanSound8K.csv`` and ``audio/fold1..10`` (10 official folds)."""

from __future__ import annotations

from pathlib import Path

from train.datasets.base import AudioDataset, Clip
from train.datasets.metadata import RowChecks, read_metadata_csv
from train.datasets.registry import register_dataset

_META = Path("metadata/UrbanSound8K.csv")


@register_dataset(
    "urbansound8k",
    detect=lambda root: (root / _META).is_file(),
    expected="metadata/UrbanSound8K.csv and audio/fold1..fold10/*.wav",
)
def load_urbansound8k(root: Path) -> AudioDataset:
    """Load UrbanSound8K; the freesound source id (``fsID``) is the group used as speaker."""
    meta = read_metadata_csv(root / _META, ["slice_file_name", "fold", "class", "fsID"])
    clips, missing = [], []
    checks = RowChecks(root / _META, folds=range(1, 11))
    for line, row in enumerate(meta.to_dict("records"), start=2):
        fold = checks.fold(row["fold"], line)
        label = checks.label(row["class"], line)
        path = root / "audio" / f"fold{fold}" / row["slice_file_name"]
        checks.once(path, row["slice_file_name"], line)
        if not path.is_file():
            missing.append((path, "listed in metadata but not found"))
            continue
        clips.append(Clip(path=path, label=label, speaker=f"fs{row['fsID']}", fold=fold))
    clips.sort(key=lambda c: str(c.path))
    return AudioDataset("urbansound8k", root, clips, missing, metadata=root / _META)
