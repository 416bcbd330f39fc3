"""Google Speech Commands (v1/v2): one folder per word plus official validation/testing lists."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from common.errors import UserError
from common.text_files import read_user_text
from train.datasets.base import AudioDataset, Clip, is_audio_file
from train.datasets.registry import register_dataset

_BACKGROUND = "_background_noise_"


def _read_list(path: Path) -> set[str]:
    """The entries of a split list (``<word>/<file>.wav``, relative to the dataset folder).

    Raises:
        UserError: The list is not UTF-8 text, or an entry is absolute or climbs out of the folder
            (it could never name a clip of the dataset: the list is from somewhere else).
    """
    if not path.is_file():
        return set()
    entries = set()
    for number, line in enumerate(read_user_text(path, "split list").splitlines(), start=1):
        entry = line.strip()
        if entry and (PurePosixPath(entry).is_absolute() or ".." in PurePosixPath(entry).parts):
            raise UserError(
                f"split list {path}, line {number}: '{entry}' is not a path inside the dataset folder; entries are "
                f"<word>/<file>.wav relative to {path.parent} (e.g. yes/0a7c2a8d_nohash_0.wav)"
            )
        if entry:
            entries.add(entry)
    return entries


@register_dataset(
    "speech_commands",
    detect=lambda root: (root / "testing_list.txt").is_file(),
    expected="<word>/*.wav class folders with validation_list.txt and testing_list.txt",
)
def load_speech_commands(root: Path) -> AudioDataset:
    """Load Speech Commands; ``_background_noise_`` is not a class.

    The speaker is the hash before ``_nohash_`` in the file name; files in
    ``validation_list.txt``/``testing_list.txt`` form the official val/test splits.
    """
    val = _read_list(root / "validation_list.txt")
    test = _read_list(root / "testing_list.txt")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name == _BACKGROUND or folder.name.startswith((".", "_")):
            continue
        for path in sorted(folder.iterdir()):
            if not is_audio_file(path):
                continue
            rel = f"{folder.name}/{path.name}"
            split = "test" if rel in test else "val" if rel in val else "train"
            speaker = path.name.split("_nohash_")[0] if "_nohash_" in path.name else None
            clips.append(Clip(path=path, label=folder.name, speaker=speaker, split=split))
    return AudioDataset("speech_commands", root, clips)
