"""The loop's state at a generation boundary, as plain data (what the checkpoint stores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COUNTERS = ("evaluations", "full_evaluations", "precheck_rejected", "failed", "cache_hits", "feasible", "low_fidelity")


@dataclass
class Member:
    """A population member: its genome (as bred, before canonicalisation), key and crowding distance.

    The crowding distance is the one computed at survival on the whole merged front; it cannot
    be recomputed from the survivors alone, so it is stored.
    """

    genome: list[int]
    key: str
    crowding: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"genome": list(self.genome), "key": self.key, "crowding": self.crowding}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Member:
        """Inverse of :meth:`to_json`."""
        return cls([int(g) for g in data["genome"]], str(data["key"]), float(data["crowding"]))


@dataclass
class SearchState:
    """Everything the loop carries from one generation to the next, except the RNG and the cache.

    Attributes:
        next_generation: The generation to run next (0 before the initial population).
        population: Current population (NSGA-II) or last batch (random search).
        evaluated_keys: Keys recorded so far, in the order the search first met them.
        counters: Cumulative counts (see ``nas.history``).
        history: One row per finished generation.
        elapsed_s: Wall time spent in generations so far, across sessions.
    """

    next_generation: int = 0
    population: list[Member] = field(default_factory=list)
    evaluated_keys: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "next_generation": self.next_generation,
            "population": [m.to_json() for m in self.population],
            "evaluated_keys": list(self.evaluated_keys),
            "counters": dict(self.counters),
            "history": [dict(row) for row in self.history],
            "elapsed_s": self.elapsed_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchState:
        """Inverse of :meth:`to_json`."""
        counters = {name: int(data["counters"].get(name, 0)) for name in COUNTERS}  # a counter added later: 0
        return cls(
            next_generation=int(data["next_generation"]),
            population=[Member.from_json(m) for m in data["population"]],
            evaluated_keys=[str(k) for k in data["evaluated_keys"]],
            counters=counters,
            history=[dict(row) for row in data["history"]],
            elapsed_s=float(data["elapsed_s"]),
        )
