"""Whether a latency table describes this machine: its CPU (model, vector flags, architecture) against ours.

A table's latencies hold for the CPU it was measured on. Machines of one cloud kind differ (an
AMD EPYC with AVX-512 and VNNI, another with AVX2 only), and kernels, hence latencies and even
rankings, differ with them: a search says which machine its latencies are for, and a validation
on another CPU is refused rather than reported as a prediction error.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from latency_tables.device_info import cpu_flags, cpu_model

MATCH_FIELDS = ("cpu_model", "cpu_flags", "machine")  # what changes the kernels ONNX Runtime runs


def this_machine() -> dict[str, object]:
    """The fields of :data:`MATCH_FIELDS` (and the core count) for this machine."""
    return {"cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "machine": platform.machine(),
            "cpu_count": os.cpu_count()}  # fmt: skip


def describe_cpu(device: dict | None) -> str:
    """``AMD EPYC (avx2, avx512f), 2 cores`` from a table's ``device`` metadata (or this machine's)."""
    if not device:
        return "an unrecorded machine"
    flags = ", ".join(device.get("cpu_flags") or []) or "no AVX2/AVX-512/NEON flags"
    cores = f", {device['cpu_count']} cores" if device.get("cpu_count") else ""
    return f"{device.get('cpu_model', '?')} ({flags}){cores}"


@dataclass(frozen=True)
class DeviceMatch:
    """A table's machine against this one.

    Attributes:
        known: The table records its machine (hand-made tables may not).
        same: Known, and CPU model, flags and architecture are equal.
        table_cpu: The table's machine, described.
        here_cpu: This machine, described.
    """

    known: bool
    same: bool
    table_cpu: str
    here_cpu: str

    def label(self) -> str:
        """``this machine``, ``another machine: ...`` or ``machine not recorded``."""
        if not self.known:
            return "its machine is not recorded"
        if self.same:
            return f"this machine, {self.here_cpu}"
        return f"another machine: {self.table_cpu}; this one is {self.here_cpu}"


def same_cpu(first: dict | None, second: dict | None) -> bool | None:
    """Whether two machine records (``device_metadata()``) have the same CPU; None when either lacks a field."""
    if not first or not second or not all(name in first and name in second for name in MATCH_FIELDS):
        return None
    return all(_norm(first[name]) == _norm(second[name]) for name in MATCH_FIELDS)


def match_this_machine(meta: dict) -> DeviceMatch:
    """Compare a table's metadata (``meta["device"]``) with this machine."""
    device = meta.get("device") or {}
    here = this_machine()
    same = same_cpu(device, here)
    return DeviceMatch(same is not None, same is True, describe_cpu(device), describe_cpu(here))


def _norm(value: object) -> object:
    return sorted(value) if isinstance(value, (list, tuple)) else value
