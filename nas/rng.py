"""Random streams: the search's own stream, protection of global RNGs, and their plain-data states.

DEAP operators draw from the global ``random`` module. The search keeps its stream in a
:class:`SearchRandom` and swaps it in only while its operators run, so nothing else in the
process (an in-process evaluation, a library thread) can shift it, and its state is exactly
what the checkpoint stores. torch is imported lazily: its state is saved only when torch is
already loaded, and restored only when a checkpoint holds one.
"""

from __future__ import annotations

import base64
import contextlib
import random
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


class SearchRandom:
    """The search's python ``random`` stream, active only inside :meth:`active`."""

    def __init__(self, seed: int) -> None:
        self._state = random.Random(seed).getstate()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make this stream the global ``random`` state for the duration of the block."""
        outside = random.getstate()
        random.setstate(self._state)
        try:
            yield
        finally:
            self._state = random.getstate()
            random.setstate(outside)

    def to_json(self) -> list[Any]:
        """The state as plain JSON data."""
        version, internal, gauss = self._state
        return [version, list(internal), gauss]

    def load_json(self, data: list[Any]) -> None:
        """Restore a state written by :meth:`to_json`."""
        version, internal, gauss = data
        self._state = (int(version), tuple(int(x) for x in internal), gauss)


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Save and restore the global python, numpy and (if loaded) torch RNG states around a block."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if torch is not None and torch_state is not None:
            torch.set_rng_state(torch_state)


def seed_global_rngs(seed: int) -> None:
    """Seed numpy's global RNG and torch's (when loaded); the search's own stream is separate."""
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def global_rng_states() -> dict[str, Any]:
    """The global RNG states of numpy and (when loaded) torch, as plain JSON data."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"name": name, "keys": [int(k) for k in keys], "pos": int(pos), "has_gauss": int(has_gauss)}
    numpy_state["cached_gaussian"] = float(cached)
    torch = sys.modules.get("torch")
    torch_state = None
    if torch is not None:
        torch_state = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")
    return {"numpy": numpy_state, "torch": torch_state}


def restore_global_rng_states(states: dict[str, Any]) -> None:
    """Restore states written by :func:`global_rng_states` (imports torch only if a torch state is present)."""
    n = states["numpy"]
    keys = np.array(n["keys"], dtype=np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    if states.get("torch"):
        import torch

        raw = np.frombuffer(base64.b64decode(states["torch"]), dtype=np.uint8).copy()
        torch.set_rng_state(torch.from_numpy(raw))
