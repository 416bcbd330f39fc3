"""Speech-emotion datasets whose labels and speakers live in the file names: CREMA-D, RAVDESS, Emo-DB."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from train.datasets.base import AudioDataset, Clip
from train.datasets.registry import register_dataset

CREMA_EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
EMODB_EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}

_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav$", re.IGNORECASE)
_RAVDESS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.wav$")
_EMODB = re.compile(r"^(\d{2})([a-z]\d{2})([WLEAFTN])([a-z])\.wav$")


def _wavs(root: Path, pattern: re.Pattern[str]) -> Iterator[tuple[Path, re.Match[str]]]:
    for path in sorted(root.rglob("*.wav")):
        match = pattern.match(path.name)
        if match:
            yield path, match


def _has(root: Path, pattern: re.Pattern[str]) -> bool:
    return root.is_dir() and next(_wavs(root, pattern), None) is not None


@register_dataset(
    "crema_d",
    detect=lambda root: _has(root, _CREMA),
    expected="AudioWAV/{actor}_{sentence}_{EMOTION}_{level}.wav (e.g. 1001_DFA_ANG_XX.wav)",
)
def load_crema_d(root: Path) -> AudioDataset:
    """Load CREMA-D: ``ActorID_Sentence_Emotion_Level.wav``; label = emotion, speaker = actor."""
    clips = []
    for path, m in _wavs(root, _CREMA):
        emotion = m.group(3).upper()
        if emotion in CREMA_EMOTIONS:
            clips.append(Clip(path=path, label=CREMA_EMOTIONS[emotion], speaker=m.group(1)))
    return AudioDataset("crema_d", root, clips)


@register_dataset(
    "ravdess",
    detect=lambda root: _has(root, _RAVDESS),
    expected="Actor_XX/MM-VV-EE-II-SS-RR-AA.wav (e.g. Actor_01/03-01-05-01-02-01-01.wav)",
)
def load_ravdess(root: Path) -> AudioDataset:
    """Load RAVDESS audio-only files (modality 03), speech and song; speaker = actor."""
    clips = []
    for path, m in _wavs(root, _RAVDESS):
        modality, emotion, actor = m.group(1), m.group(3), m.group(7)
        if modality == "03" and emotion in RAVDESS_EMOTIONS:
            clips.append(Clip(path=path, label=RAVDESS_EMOTIONS[emotion], speaker=f"actor{actor}"))
    return AudioDataset("ravdess", root, clips)


@register_dataset(
    "emodb",
    detect=lambda root: _has(root, _EMODB),
    expected="wav/{speaker:2}{text:3}{EMOTION}{version}.wav (e.g. wav/03a01Fa.wav)",
)
def load_emodb(root: Path) -> AudioDataset:
    """Load Emo-DB (Berlin): emotion letter after the text code; speaker = first two digits."""
    clips = [Clip(path=path, label=EMODB_EMOTIONS[m.group(3)], speaker=m.group(1)) for path, m in _wavs(root, _EMODB)]
    return AudioDataset("emodb", root, clips)
