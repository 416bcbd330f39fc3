"""Reading metadata CSVs with a clear error for missing columns, and keeping listed paths inside the dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from common.errors import UserError
from common.text_files import read_user_csv

OUTSIDE_OPTION = "data.allow_outside_paths"


def read_metadata_csv(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a metadata CSV and check that it has the ``required`` columns.

    Raises:
        UserError: The file is not UTF-8 text, does not parse, is empty, or lacks a required column
            (the message names the missing columns and the ones found).
    """
    frame = read_user_csv(path, "metadata file", dtype=str, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserError(
            f"metadata file {path} lacks required column(s) {', '.join(missing)}; "
            f"found columns: {', '.join(frame.columns) or '(none)'}"
        )
    return frame


def parse_int(value: str, what: str, path: Path) -> int:
    """Parse an integer cell, with an error naming the file and the column."""
    try:
        return int(float(value))
    except ValueError:
        raise UserError(f"metadata file {path}: {what} must be an integer, got '{value}'") from None


def leaves_folder(path: Path, root: Path) -> bool:
    """Whether ``path`` (as written, ``..`` collapsed, symlinks not followed) lies outside the folder ``root``.

    Symlinks inside the dataset folder are followed as usual: only the path the metadata spells
    out is judged, so a dataset whose ``audio/`` is a link to another disk still loads.
    """
    here = os.path.normpath(os.path.abspath(path))
    base = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([here, base]) != base


def check_inside(paths: list[Path], root: Path, listed_in: Path | str, allow: bool = False) -> None:
    """Refuse metadata that points outside the dataset folder (``../``, absolute paths), unless allowed.

    Args:
        paths: Every path the metadata lists (found or not).
        root: The dataset folder.
        listed_in: The metadata file (or the dataset root), for the message.
        allow: Follow such paths (``data.allow_outside_paths``).

    Raises:
        UserError: Naming how many paths leave the folder, the first one, and the option that allows them.
    """
    if allow:
        return
    outside = [p for p in paths if leaves_folder(p, root)]
    if outside:
        raise UserError(
            f"{listed_in} lists {len(outside)} path(s) outside the dataset folder {root}, e.g. "
            f"{os.path.normpath(outside[0])}; keep the audio inside the dataset folder, or set "
            f"{OUTSIDE_OPTION}: true in a --config file to read files from elsewhere"
        )
