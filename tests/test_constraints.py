"""``constraints.txt`` is the lock file: the exact versions this environment (and so the tests) runs with."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.version import Version

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[match.group(1).lower()] = match.group(2)
    return pins


CORE = ("torch", "onnxruntime", "onnx", "numpy", "deap", "librosa", "scikit-learn")


def test_every_line_is_an_exact_pin_and_the_stack_is_pinned() -> None:
    pins = _pins()
    for name in CORE:
        assert name in pins, f"constraints.txt does not pin {name}"


def test_the_installed_versions_are_the_pinned_ones() -> None:
    """A fresh install with ``-c constraints.txt`` (README, .ci/run) gets exactly these versions."""
    mismatched = []
    for name, pinned in _pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            assert name not in CORE, f"{name} is pinned but not installed"
            continue  # an optional extra not installed here (e.g. a benchmark peer)
        if Version(installed).public != Version(pinned).public:  # torch's local tag (+cpu) is not part of the pin
            mismatched.append(f"{name} {installed} (pinned {pinned})")
    if mismatched:
        pytest.fail("installed versions differ from constraints.txt: " + ", ".join(mismatched)
                    + "; reinstall with -c constraints.txt, or upgrade as its header says")  # fmt: skip
