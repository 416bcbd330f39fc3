"""Waveform augmentation: each perturbation does what it says on a known signal; copies are cached and drawn."""

from __future__ import annotations

import numpy as np
import pytest

from complete_pipeline import main
from train.train_config import WaveAugmentConfig
from train.wave_augment import add_noise, augment_clip, change_speed, time_shift

SR = 16000


def _tone(freq_hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[spectrum.argmax()])


def test_noise_is_added_at_the_asked_snr():
    clean = _tone(440)
    rng = np.random.default_rng(0)
    for snr_db in (0.0, 10.0, 30.0):
        noisy = add_noise(clean, snr_db, rng)
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean) ** 2))
        assert measured == pytest.approx(snr_db, abs=0.05)
    background = np.random.default_rng(1).uniform(-1, 1, 5000).astype(np.float32)  # shorter than the clip: looped
    noisy = add_noise(clean, 20.0, rng, background)
    assert 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2)) == pytest.approx(20.0, abs=0.05)
    silent = np.zeros(100, dtype=np.float32)
    assert add_noise(silent, 10.0, rng) is silent


def test_shift_moves_by_whole_samples_and_speed_moves_the_pitch():
    x = np.arange(1, 11, dtype=np.float32)
    assert time_shift(x, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert time_shift(x, -2).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]
    tone = _tone(500)
    faster = change_speed(tone, 1.1, SR)
    assert len(faster) == pytest.approx(len(tone) / 1.1, abs=2)
    assert _peak_hz(faster) == pytest.approx(550, abs=3)


def test_a_copy_is_deterministic_for_its_seed_row_and_copy():
    cfg = WaveAugmentConfig(copies=2)
    tone = _tone(300)
    a = augment_clip(tone, SR, SR, cfg, row=5, copy=1)
    assert len(a) == SR and np.array_equal(a, augment_clip(tone, SR, SR, cfg, row=5, copy=1))
    assert not np.array_equal(a, augment_clip(tone, SR, SR, cfg, row=5, copy=0))
    assert not np.array_equal(a, augment_clip(tone, SR, SR, WaveAugmentConfig(copies=2, seed=1), row=5, copy=1))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"speed": (0.2, 1.0)}, "train.wave_augment.speed must be a range [low, high] with 0.5 <= low"),
        ({"snr_db": (30.0, 10.0)}, "train.wave_augment.snr_db must be a range"),
        ({"copies": 40}, "train.wave_augment.copies must be a whole number in 0..32"),
        ({"noise_prob": 2.0}, "train.wave_augment.noise_prob must be in [0, 1]"),
    ],
)
def test_out_of_range_settings_name_the_field_and_the_range(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        WaveAugmentConfig(**fields)


def test_copies_are_cached_reused_and_keyed_on_the_settings(tmp_path, capsys, cli_error):
    def run(out: str, extra: str = "") -> str:
        config = tmp_path / f"{out}.yaml"
        config.write_text(f"train:\n  wave_augment: {{copies: 2{extra}}}\n")
        # the features stage makes the copies: no training needed
        argv = ["--mode", "features", "--config", str(config), "--out", str(tmp_path / out), "--cache-dir",
                str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        return capsys.readouterr().out

    first = run("a")
    assert "augmented copies: 2 per clip" in first and "written" in first and "written" in run("b", ", seed: 3")
    assert "found in the cache" in run("c")
    folders = sorted(p.name for p in (tmp_path / "cache" / "features").iterdir() if "-aug-" in p.name)
    assert len(folders) == 2  # seed 0 (twice, reused) and seed 3
    copies = np.load(tmp_path / "cache" / "features" / folders[0] / "features.npy", mmap_mode="r")
    clean = np.load(next(p for p in (tmp_path / "cache" / "features").iterdir() if "-aug-" not in p.name
                         and p.is_dir()) / "features.npy", mmap_mode="r")  # fmt: skip
    assert copies.shape == (2 * clean.shape[0], *clean.shape[1:]) and not np.array_equal(copies[0], clean[0])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  wave_augment: {copies: 1, shift_s: 0.6}\n")
    argv = ["--mode", "baseline", "--config", str(bad), "--cache-dir", str(tmp_path / "cache"), "--out"]
    assert "must be less than half the clip" in cli_error([*argv, str(tmp_path / "d")])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    bad.write_text(f"train:\n  wave_augment: {{copies: 1, background_dir: {empty}}}\n")
    assert "holds no audio file" in cli_error([*argv, str(tmp_path / "e")])
