"""librosa, its numba kernels compiled by one process of this machine at a time.

librosa compiles its ``@guvectorize(cache=True)`` kernels when its submodules are first touched and
caches them next to its sources. numba writes each kernel's two cache files separately, so
processes that compile at the same moment (the feature workers of a first run on a fresh install,
pytest-xdist workers) can leave a mismatched pair behind, and every later run then dies with a
segmentation fault in ``librosa.onset.onset_detect`` (numba issue 10128, librosa issue 1998;
reproduced here with numba 0.68.1 and librosa 0.11.0). Importing librosa from this module takes a
file lock while the submodules load: the first process compiles and writes the cache, the others
wait (about a second once the cache is warm) and load it whole.

Use ``from train.librosa_safe import librosa`` instead of ``import librosa``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from filelock import FileLock

LOCK_PATH = Path(tempfile.gettempdir()) / f"edge-audio-nas-librosa-{os.getuid() if hasattr(os, 'getuid') else 0}.lock"

with FileLock(str(LOCK_PATH)):
    import librosa
    import librosa.effects
    import librosa.feature
    import librosa.onset
    import librosa.util

__all__ = ["librosa"]
