"""Reading audio robustly: mono float32 at a target rate, or a :class:`BadAudioError` with a reason."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from train.librosa_safe import librosa

MAX_DECODED_BYTES = 256 << 20  # float32 samples one file may decode or resample to (67 min of 16 kHz mono)


class BadAudioError(Exception):
    """A file that cannot be used as audio; ``str(exc)`` is the reason recorded in skipped_files.csv."""


def wav_truncation(path: Path) -> str | None:
    """Check a RIFF/WAVE file's ``data`` chunk against the bytes actually present.

    libsndfile silently reads what is there when a WAV is cut short; this finds the cut.

    Returns:
        A reason string if the file is truncated, else ``None`` (also for non-WAV files).
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size != 0xFFFFFFFF and available < chunk_size:
                    return f"truncated WAV: data chunk declares {chunk_size} bytes, file holds {available}"
                return None
            offset += 8 + chunk_size + (chunk_size & 1)
    return "WAV without a data chunk"


def header_problem(
    frames: int, channels: int, file_rate: int, sample_rate: int, max_bytes: int = MAX_DECODED_BYTES
) -> str | None:
    """Why a file whose header says ``frames`` x ``channels`` at ``file_rate`` Hz cannot be decoded, or None.

    Checked before reading: a damaged or hostile header (an absurd sample rate, frame or channel
    count) would otherwise make decoding or resampling allocate gigabytes.

    Args:
        frames: Frames the header claims.
        channels: Channels the header claims.
        file_rate: The header's sample rate (Hz).
        sample_rate: The rate the samples are resampled to.
        max_bytes: Bound on the decoded float32 samples and on the resampled ones.
    """
    claims = f"header claims {frames} frames of {channels} channel(s) at {file_rate} Hz"
    if file_rate <= 0 or channels <= 0 or frames < 0:
        return claims
    need = 4 * max(frames * channels, math.ceil(frames * sample_rate / file_rate))
    if need <= max_bytes:
        return None
    return (
        f"{claims}: decoding and resampling to {sample_rate} Hz would need {need / 2**20:.0f} MiB, more than the "
        f"{max_bytes >> 20} MiB allowed for one file (a damaged header, or not a clip)"
    )


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read ``path`` as mono float32 samples at ``sample_rate`` Hz.

    Stereo (or more channels) is averaged to mono; other sample rates are resampled with
    soxr (high quality).

    Raises:
        BadAudioError: Missing, empty, truncated, unreadable or non-audio file, a header whose
            decoding would need more than :data:`MAX_DECODED_BYTES`, no samples, or NaN/inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise BadAudioError("file not found")
    if path.stat().st_size == 0:
        raise BadAudioError("empty file (0 bytes)")
    try:
        truncated = wav_truncation(path)
    except OSError as exc:
        raise BadAudioError(f"unreadable: {exc}") from None
    if truncated:
        raise BadAudioError(truncated)
    try:
        info = sf.info(path)
        too_big = header_problem(info.frames, info.channels, info.samplerate, sample_rate)
        if too_big:
            raise BadAudioError(too_big)
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        reason = str(exc).split(":", 1)[-1].strip() or type(exc).__name__
        raise BadAudioError(f"not readable as audio: {reason}") from None
    if data.shape[0] == 0:
        raise BadAudioError("no samples (0 frames)")
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise BadAudioError(f"{bad} NaN/inf sample(s)")
    mono = data.mean(axis=1)
    if sr != sample_rate:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


CROPS = ("centre", "start", "onset")
ONSET_PRE_ROLL_S = 0.02  # kept before a detected onset, so that the attack itself is not cut
_ONSET_FFT, _ONSET_HOP = 512, 128  # onset-strength frames (32 ms, 8 ms hop at 16 kHz): fine enough for an attack


def fix_length(samples: np.ndarray, n_samples: int, crop: str = "centre", sample_rate: int | None = None) -> np.ndarray:
    """Crop or zero-pad (evenly on both sides) to exactly ``n_samples``.

    Args:
        samples: Mono samples.
        n_samples: Length to return.
        crop: Which part of a longer clip is kept: ``centre``, ``start`` (the first ``n_samples``),
            or ``onset`` (from just before the first onset librosa detects, so that a one-shot
            sound keeps its attack; the start when none is found).
        sample_rate: Rate of ``samples`` in Hz; needed by ``onset``.
    """
    n = len(samples)
    if n > n_samples:
        if crop == "onset":
            start = min(_first_onset(samples, sample_rate), n - n_samples)
        else:
            start = 0 if crop == "start" else (n - n_samples) // 2
        return samples[start : start + n_samples]
    if n < n_samples:
        before = (n_samples - n) // 2
        return np.pad(samples, (before, n_samples - n - before))
    return samples


def _first_onset(samples: np.ndarray, sample_rate: int | None) -> int:
    """Sample where the first onset (less the pre-roll) lies, or 0 when librosa detects none."""
    if sample_rate is None:
        raise ValueError("fix_length(crop='onset') needs the sample_rate")
    envelope = librosa.onset.onset_strength(y=samples, sr=sample_rate, hop_length=_ONSET_HOP, n_fft=_ONSET_FFT)
    onsets = librosa.onset.onset_detect(
        onset_envelope=envelope, sr=sample_rate, hop_length=_ONSET_HOP, units="samples", backtrack=True
    )
    if not len(onsets):
        return 0
    return max(0, int(onsets[0]) - round(ONSET_PRE_ROLL_S * sample_rate))
