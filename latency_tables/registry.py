"""The device registry: a device is a pair of table files; adding one needs no code change.

Tables are looked up in every folder listed in ``$EDGE_AUDIO_NAS_TABLES`` (``os.pathsep``-
separated), then in the user folder collections write to by default (:func:`user_tables_dir`:
``$XDG_DATA_HOME/edge-audio-nas/tables``, i.e. ``~/.local/share/edge-audio-nas/tables``), then
in the shipped folder ``latency_tables/tables/``. A collection never writes into the installed
package: commit a table to the repository by copying its two files into ``latency_tables/tables/``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from common.errors import UserError
from latency_tables.locations import SHIPPED_TABLES, env_dirs, user_tables_dir
from latency_tables.table import LatencyTable, load_table


def tables_dirs() -> list[Path]:
    """Folders searched for ``<device>.csv`` + ``<device>.json``, in priority order."""
    return list(dict.fromkeys([*env_dirs(), user_tables_dir(), SHIPPED_TABLES]))


def list_devices() -> list[str]:
    """Names of every device with a table (csv and json both present)."""
    names: list[str] = []
    for folder in tables_dirs():
        if folder.is_dir():
            for csv in sorted(folder.glob("*.csv")):
                if csv.with_suffix(".json").is_file() and csv.stem not in names:
                    names.append(csv.stem)
    return names


def table_path(device: str) -> Path:
    """The CSV file of ``device``'s table.

    Raises:
        UserError: Unknown device; the message lists the known ones and how to add one.
    """
    for folder in tables_dirs():
        csv = folder / f"{device}.csv"
        if csv.is_file() and csv.with_suffix(".json").is_file():
            return csv
    known = ", ".join(list_devices()) or "(none)"
    raise UserError(
        f"unknown device '{device}'; known devices: {known}. Collect a table on the device with "
        f"python complete_pipeline.py --mode latency-table --device-name {device}"
    )


@lru_cache(maxsize=16)
def _load_cached(path: str, csv_mtime_ns: int, meta_mtime_ns: int) -> LatencyTable:
    return load_table(path)


def cached_table(path: str | Path) -> LatencyTable:
    """:func:`load_table` once per process per table version (reloaded when either file changes).

    The metadata counts too: a recalibration rewrites only ``<device>.json``.
    """
    path = Path(path)
    meta = path.with_suffix(".json")
    meta_mtime = meta.stat().st_mtime_ns if meta.is_file() else 0
    return _load_cached(str(path), path.stat().st_mtime_ns, meta_mtime)


def load_device(device: str) -> LatencyTable:
    """The latency table of ``device`` (cached per process until the file changes)."""
    return cached_table(table_path(device))
