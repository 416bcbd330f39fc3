"""Where latency tables live: the shipped folder, ``$EDGE_AUDIO_NAS_TABLES`` and the user folder (no heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED_TABLES = Path(__file__).resolve().parent / "tables"
TABLES_ENV = "EDGE_AUDIO_NAS_TABLES"


def env_dirs() -> list[Path]:
    """The folders listed in ``$EDGE_AUDIO_NAS_TABLES``, in order."""
    return [Path(p).expanduser() for p in os.environ.get(TABLES_ENV, "").split(os.pathsep) if p]


def user_tables_dir() -> Path:
    """Where ``--mode latency-table`` writes without ``--tables-dir``.

    The first ``$EDGE_AUDIO_NAS_TABLES`` folder, else ``$XDG_DATA_HOME/edge-audio-nas/tables``
    (``~/.local/share/edge-audio-nas/tables``).
    """
    env = env_dirs()
    if env:
        return env[0]
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "edge-audio-nas" / "tables"
