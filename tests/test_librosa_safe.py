"""librosa's numba cache compiled by processes started together stays loadable (numba issue 10128)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ONSETS = (
    "import numpy as np; from train.librosa_safe import librosa; "
    "y = np.random.default_rng(0).standard_normal(16000).astype(np.float32); "
    "print(len(librosa.onset.onset_detect(y=y, sr=16000)))"
)


@pytest.mark.slow  # 30 s: a cold numba compilation of librosa's kernels, on purpose
def test_processes_compiling_librosa_together_leave_a_cache_every_later_process_loads(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(REPO)}
    together = [subprocess.Popen([sys.executable, "-c", ONSETS], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in together]
    assert all(p.returncode == 0 for p in together), [err[-2000:] for _, err in outputs]
    assert any((tmp_path / "numba").rglob("*.nbc"))  # the kernels were cached, in the folder given
    for _ in range(2):  # from the cache the three left behind: a mismatched pair would segfault here
        later = subprocess.run([sys.executable, "-c", ONSETS], cwd=REPO, env=env, capture_output=True, text=True)
        assert later.returncode == 0, later.stderr[-2000:]
        assert later.stdout == outputs[0][0]
