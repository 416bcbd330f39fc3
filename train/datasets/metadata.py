"""Reading metadata CSVs with a clear error for missing columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.errors import UserError


def read_metadata_csv(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a metadata CSV and check that it has the ``required`` columns.

    Raises:
        UserError: The file does not parse, is empty, or lacks a required column (the message
            names the missing columns and the ones found).
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"metadata file {path} cannot be read as CSV: {str(exc).splitlines()[0]}") from None
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
