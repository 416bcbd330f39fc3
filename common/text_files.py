"""The one place user-facing text files are opened and decoded: config files, metadata CSVs, lists, tables.

Every such file is read whole as UTF-8 (a UTF-8 byte-order mark is accepted and dropped); a file that
is not UTF-8 text, is a binary file, cannot be opened or is implausibly large for what it is gives
one :class:`~common.errors.UserError` naming the file, what it is used as, and how to fix it,
instead of a ``UnicodeDecodeError`` or ``OSError`` traceback from deep inside a parser.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

ENCODING = "UTF-8"
DEFAULT_MAX_BYTES = 1 << 30  # no config, metadata CSV, list or table of this tool comes near 1 GiB
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


def read_user_text(path: str | os.PathLike, what: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of a user's file, decoded as UTF-8.

    Args:
        path: The file.
        what: What the file is to this tool (e.g. ``"config file"``, ``"metadata file"``), used in
            messages as ``"<what> <path> ..."``.
        max_bytes: Larger files are refused unread (a wrong path, not a file of this kind).

    Returns:
        The decoded text, without a leading byte-order mark.

    Raises:
        UserError: The file is missing, is a folder, cannot be read, is larger than ``max_bytes``,
            is not UTF-8 (the message names the first undecodable byte and its offset), or holds
            NUL bytes (a binary file).
    """
    path = Path(path)
    data = _read_bytes(path, what, max_bytes)
    if data.startswith(_UTF16_BOMS):
        raise UserError(f"{what} {path} is UTF-16 text; expected {ENCODING}: save it as {ENCODING} (without BOM)")
    try:
        text = data.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0)
        raise UserError(
            f"{what} {path} is not {ENCODING} text (byte 0x{data[offset]:02x} at offset {offset} is not valid "
            f"{ENCODING}); expected {ENCODING}: convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if "\x00" in text:
        raise UserError(f"{what} {path} holds NUL bytes: it is a binary file, not {ENCODING} text")
    return text


def _read_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; expected a file")
    try:
        size = path.stat().st_size
        if size <= max_bytes:
            return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    raise UserError(
        f"{what} {path} is {size / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB such a file can be; "
        "check the path"
    )


def read_user_json(path: str | os.PathLike, what: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """A user's JSON file, parsed (see :func:`read_user_text` for the reading).

    Raises:
        UserError: Any reading error, or the file is not valid JSON (line and column named).
    """
    text = read_user_text(path, what, max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def read_user_csv(path: str | os.PathLike, what: str, **read_csv_kwargs: Any) -> pd.DataFrame:
    """A user's CSV file as a DataFrame (decoded by :func:`read_user_text`, parsed by :func:`pandas.read_csv`).

    Args:
        path: The CSV file.
        what: What the file is, for messages.
        **read_csv_kwargs: Passed to :func:`pandas.read_csv` (``dtype``, ``keep_default_na``, ...).

    Raises:
        UserError: Any reading error, or the text does not parse as CSV (or has no header).
    """
    import pandas as pd

    text = read_user_text(path, what)
    try:
        return pd.read_csv(io.StringIO(text), **read_csv_kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{what} {path} cannot be read as CSV: {str(exc).splitlines()[0]}") from None
