"""Builders of small dataset trees in the real on-disk layouts, with generated WAVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(freq_hz: float = 440.0, seconds: float = 0.3, sr: int = 16000, channels: int = 1) -> np.ndarray:
    """A sine tone (with a little noise so no two files are identical)."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq_hz * t) + 0.01 * np.random.default_rng(int(freq_hz)).standard_normal(len(t))
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_wav(path: Path, freq_hz: float = 440.0, sr: int = 16000, seconds: float = 0.3, channels: int = 1) -> Path:
    """Write a PCM-16 tone WAV, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq_hz, seconds, sr, channels), sr, subtype="PCM_16")
    return path


def make_urbansound8k(root: Path, per_fold: int = 2) -> Path:
    classes = ["air_conditioner", "car_horn", "dog_bark"]
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for fold in range(1, 11):
        for ci, name in enumerate(classes):
            for k in range(per_fold):
                fs_id = 1000 + fold * 10 + k
                fname = f"{fs_id}-{ci}-0-{k}.wav"
                write_wav(root / "audio" / f"fold{fold}" / fname, 300 + 100 * ci + k)
                rows.append(f"{fname},{fs_id},0.0,0.3,1,{fold},{ci},{name}")
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")
    return root


def make_esc50(root: Path, per_fold: int = 2) -> Path:
    classes = ["dog", "rooster", "rain"]
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for ci, name in enumerate(classes):
            for k in range(per_fold):
                src = 100000 + fold * 100 + ci * 10 + k
                fname = f"{fold}-{src}-A-{ci}.wav"
                write_wav(root / "audio" / fname, 500 + 50 * ci + k)
                rows.append(f"{fname},{fold},{ci},{name},True,{src},A")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def make_speech_commands(root: Path) -> Path:
    words = ["yes", "no", "up"]
    val, test = [], []
    for wi, word in enumerate(words):
        for si, speaker in enumerate(["0a7c2a8d", "1b4c9b89", "2c5d0c90", "3d6e1d01"]):
            rel = f"{word}/{speaker}_nohash_0.wav"
            write_wav(root / rel, 200 + 100 * wi + si)
            if si == 2:
                val.append(rel)
            elif si == 3:
                test.append(rel)
    write_wav(root / "_background_noise_" / "white_noise.wav", 1000, seconds=1.0)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root


def make_fsdd(root: Path, speakers=("jackson", "theo", "nicolas"), takes: int = 8) -> Path:
    for digit in range(3):
        for speaker in speakers:
            for take in range(takes):
                write_wav(root / "recordings" / f"{digit}_{speaker}_{take}.wav", 300 + 200 * digit + take, sr=8000)
    return root


def make_crema_d(root: Path) -> Path:
    for actor in ("1001", "1002", "1003"):
        for emotion in ("ANG", "HAP", "SAD"):
            for sentence in ("DFA", "IEO"):
                write_wav(root / "AudioWAV" / f"{actor}_{sentence}_{emotion}_XX.wav", 300 + int(actor) % 10 * 50)
    return root


def make_ravdess(root: Path) -> Path:
    for actor in (1, 2, 3):
        for emotion in ("01", "03", "05"):
            for rep in ("01", "02"):
                name = f"03-01-{emotion}-01-01-{rep}-{actor:02d}.wav"
                write_wav(root / f"Actor_{actor:02d}" / name, 300 + actor * 40 + int(emotion))
        # a video-only file name that must be ignored
        write_wav(root / f"Actor_{actor:02d}" / f"02-01-01-01-01-01-{actor:02d}.wav", 100)
    return root


def make_emodb(root: Path) -> Path:
    for speaker in ("03", "08", "09"):
        for emotion in ("W", "F", "N"):
            for text in ("a01", "a02"):
                write_wav(root / "wav" / f"{speaker}{text}{emotion}a.wav", 200 + int(speaker) * 20)
    return root


def make_folders(root: Path, classes=("cat", "dog", "bird"), per_class: int = 6) -> Path:
    for ci, name in enumerate(classes):
        for k in range(per_class):
            write_wav(root / name / f"{name}_{k}.wav", 300 + 150 * ci + 10 * k)
    return root


def make_csv(root: Path, per_class: int = 6) -> Path:
    rows = ["file_path,label,speaker,fold"]
    for ci, name in enumerate(("low", "mid", "high")):
        for k in range(per_class):
            rel = f"clips/{name}_{k}.wav"
            write_wav(root / rel, 200 + 400 * ci + k)
            rows.append(f"{rel},{name},spk{k % 3},{k % 2 + 1}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root / "metadata.csv"
