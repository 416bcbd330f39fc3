"""Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{index}.wav``."""

from __future__ import annotations

import re
from pathlib import Path

from train.datasets.base import AudioDataset, Clip
from train.datasets.registry import register_dataset

_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")
TEST_TAKES = range(5)  # the conventional split: takes 0-4 of every speaker and digit are test


def _recordings(root: Path) -> Path:
    return root / "recordings" if (root / "recordings").is_dir() else root


def _detect(root: Path) -> bool:
    folder = _recordings(root)
    return folder.is_dir() and any(_NAME.match(p.name) for p in folder.glob("*.wav"))


@register_dataset(
    "fsdd",
    detect=_detect,
    expected="recordings/{digit}_{speaker}_{index}.wav (e.g. recordings/7_jackson_32.wav)",
)
def load_fsdd(root: Path) -> AudioDataset:
    """Load FSDD; takes 0-4 are the official test split, the rest train/val."""
    clips = []
    for path in sorted(_recordings(root).glob("*.wav")):
        match = _NAME.match(path.name)
        if not match:
            continue
        digit, speaker, take = match.group(1), match.group(2), int(match.group(3))
        split = "test" if take in TEST_TAKES else None
        clips.append(Clip(path=path, label=digit, speaker=speaker, split=split))
    return AudioDataset("fsdd", root, clips)
