"""A folder-per-class tree: ``<root>/<class>/**/*.wav``."""

from __future__ import annotations

from pathlib import Path

from train.datasets.base import AudioDataset, Clip, is_audio_file
from train.datasets.registry import register_dataset


def _class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _detect(root: Path) -> bool:
    dirs = _class_dirs(root)
    with_audio = [d for d in dirs if any(is_audio_file(p) for p in d.rglob("*"))]
    return len(with_audio) >= 2


@register_dataset(
    "folders",
    detect=_detect,
    generic=True,
    expected="one sub-folder per class holding audio files (<root>/<class>/*.wav), at least 2 classes",
)
def load_folders(root: Path) -> AudioDataset:
    """Load every audio file under each class folder (recursively); label = folder name."""
    clips = [
        Clip(path=path, label=folder.name)
        for folder in _class_dirs(root)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and is_audio_file(path)
    ]
    return AudioDataset("folders", root, clips)
