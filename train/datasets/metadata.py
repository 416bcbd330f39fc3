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


MISSING_LABELS = frozenset({"", "nan", "null", "na", "n/a", "<na>"})  # how spreadsheets and pandas spell "no value"


class RowChecks:
    """The checks every metadata loader applies to its rows: a label, each file listed once, a fold in range.

    One row's problem is one :class:`UserError` naming the file, the line and what was expected;
    the CSV, UrbanSound8K and ESC-50 loaders share it so that none of them accepts silently what
    another refuses.
    """

    def __init__(self, path: Path, folds: range | None = None) -> None:
        """Checks for the metadata file ``path``; ``folds``: the official fold numbers (None: any integer >= 0)."""
        self.path, self.folds = path, folds
        self._first_line: dict[Path, int] = {}

    def label(self, value: object, line: int) -> str:
        """The row's class name, stripped.

        Raises:
            UserError: An empty or missing (``NaN``, ``null``, ...) label.
        """
        label = str(value).strip()
        if label.lower() in MISSING_LABELS:
            raise UserError(f"metadata file {self.path}, line {line}: {'empty' if not label else 'missing'} label "
                            f"{label!r}; every row needs a class name")  # fmt: skip
        return label

    def once(self, path: Path, written: str, line: int) -> None:
        """Refuse a file listed a second time (it could land in train and test at once).

        Raises:
            UserError: Naming both lines.
        """
        real = path.resolve()
        if real in self._first_line:
            raise UserError(f"metadata file {self.path}, line {line}: {written} is already listed on line "
                            f"{self._first_line[real]}; list each file once")  # fmt: skip
        self._first_line[real] = line

    def fold(self, value: str, line: int) -> int:
        """The row's fold number, checked against the official folds.

        Raises:
            UserError: Not an integer, or outside the folds.
        """
        fold = parse_int(value, "fold", self.path)
        if self.folds is not None and fold not in self.folds:
            raise UserError(f"metadata file {self.path}, line {line}: fold {fold} is not one of the official folds "
                            f"{self.folds.start}..{self.folds.stop - 1}")  # fmt: skip
        if fold < 0:
            raise UserError(f"metadata file {self.path}, line {line}: fold {fold} must be >= 0")
        return fold
