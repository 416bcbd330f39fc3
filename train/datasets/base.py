"""The dataset abstraction: a named list of labelled clips, each with optional speaker and fold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


@dataclass(frozen=True)
class Clip:
    """One audio file and what is known about it.

    Attributes:
        path: Absolute path of the audio file.
        label: Class name.
        speaker: Speaker (or source-recording group) id, when the dataset records one; used for
            speaker-disjoint splits and per-speaker accuracy.
        fold: Official cross-validation fold, when the dataset defines folds.
        split: Official split (``train``/``val``/``test``) when the dataset ships split lists.
    """

    path: Path
    label: str
    speaker: str | None = None
    fold: int | None = None
    split: str | None = None


@dataclass
class AudioDataset:
    """A loaded dataset: clips sorted by path, plus where they came from.

    Attributes:
        name: Registry name of the loader (``fsdd``, ``urbansound8k``, ..., ``synthetic``).
        root: The folder (or CSV file) the clips were read from.
        clips: The clips, sorted by path so that every run sees the same order.
        missing: Files the metadata lists but that do not exist, with a reason; the feature
            stage reports them with the other skipped files.
        metadata: The file that lists the clips (None for layouts found by walking folders).
    """

    name: str
    root: Path
    clips: list[Clip]
    missing: list[tuple[Path, str]] = field(default_factory=list)
    metadata: Path | None = None

    @property
    def folder(self) -> Path:
        """The dataset folder: ``root``, or the folder of a CSV manifest given as a file."""
        return self.root if self.root.is_dir() else self.root.parent

    @property
    def classes(self) -> list[str]:
        """Sorted class names; a clip's integer label is its index here."""
        return sorted({c.label for c in self.clips})

    @property
    def has_speakers(self) -> bool:
        """Whether every clip has a speaker id (needed for speaker-disjoint splits)."""
        return bool(self.clips) and all(c.speaker is not None for c in self.clips)

    def class_counts(self) -> dict[str, int]:
        """Number of clips per class."""
        return dict(sorted(Counter(c.label for c in self.clips).items()))


def is_audio_file(path: Path) -> bool:
    """Whether ``path`` has one of the audio extensions the loaders accept."""
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")
