"""Plain JSON from report data: NaN and infinities as null, numpy scalars as numbers, paths as file names."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def json_safe(value: Any) -> Any:
    """Plain JSON data: NaN and infinities as null, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return value.name
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-safe dicts (NaN as null)."""
    return json_safe(frame.astype(object).where(frame.notna(), None).to_dict("records"))
