"""Shared fixtures: a private feature cache per test session and the real FSDD folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FSDD_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep every test's datasets, features and collected latency tables out of the user's folders."""
    cache = tmp_path_factory.mktemp("cache")
    saved = {name: os.environ.get(name) for name in ("EDGE_AUDIO_NAS_CACHE", "XDG_DATA_HOME")}
    os.environ["EDGE_AUDIO_NAS_CACHE"] = str(cache)
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data-home"))  # latency tables collected by tests
    yield cache
    for name, old in saved.items():
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


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
