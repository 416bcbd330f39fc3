"""Hand-made latency tables for tests."""

from __future__ import annotations

import json
from pathlib import Path

from latency_tables.keys import OpKey
from latency_tables.table import TABLE_COLUMNS, TABLE_FORMAT_VERSION


def write_table(
    folder: Path,
    name: str,
    latencies: dict[str, float],
    space: str = "mel2d",
    input_shape=(1, 40, 101),
    n_classes: int = 10,
    calibration: dict | None = None,
    **meta_overrides,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [",".join(TABLE_COLUMNS)]
    for key, ms in latencies.items():
        kind = key.split("_")[0]
        rows.append(f"{key},{kind},{ms},{ms},0.0,,3,1.0")
    (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")
    meta = {
        "format_version": TABLE_FORMAT_VERSION,
        "device_name": name,
        "space": space,
        "input_shape": list(input_shape),
        "n_classes": n_classes,
        "units": "ms",
        "threads": 1,
        "calibration": calibration,
    } | meta_overrides
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder / f"{name}.csv"


def latencies_for(ops: list[OpKey], base: float = 0.01) -> dict[str, float]:
    """A distinct, hand-checkable latency per op: base * (i + 1)."""
    unique = list(dict.fromkeys(op.key for op in ops))
    return {key: round(base * (i + 1), 6) for i, key in enumerate(unique)}
