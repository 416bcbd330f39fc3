"""Shared fixtures: a private feature cache per test session and the real FSDD folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FSDD_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep every test's datasets and features out of the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("EDGE_AUDIO_NAS_CACHE")
    os.environ["EDGE_AUDIO_NAS_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("EDGE_AUDIO_NAS_CACHE", None)
    else:
        os.environ["EDGE_AUDIO_NAS_CACHE"] = old


@pytest.fixture
def fsdd_path() -> Path:
    """The real Free Spoken Digit Dataset beside the repo (skips when it is not there)."""
    if not (FSDD_PATH / "recordings").is_dir():
        pytest.skip(f"FSDD not found at {FSDD_PATH}")
    return FSDD_PATH


@pytest.fixture
def cli_error(capsys, tmp_path_factory):
    """Run the CLI in-process and return its one-line error, checking exit code 2 and no traceback.

    Without ``--mode`` it runs ``features``; without ``--out`` it writes into a temporary folder.
    """
    from complete_pipeline import main

    def run(argv: list[str]) -> str:
        if "--mode" not in argv:
            argv = ["--mode", "features", *argv]
        if "--out" not in argv:
            argv = [*argv, "--out", str(tmp_path_factory.mktemp("cli-error"))]
        code = main([*argv, "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        return lines[0]

    return run
