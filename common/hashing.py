"""Stable content hashes for cache keys and config fingerprints."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of ``obj``'s canonical JSON form (sorted keys, no whitespace).

    Args:
        obj: Anything JSON-serialisable (dataclasses should be passed through ``asdict`` first).
        length: Number of hex characters kept.

    Returns:
        A hex string that is identical across processes, machines and Python versions.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def seed_from_string(text: str, bits: int = 31) -> int:
    """A deterministic integer seed derived from a string (e.g. an ArchSpec's canonical form)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % (1 << bits)
