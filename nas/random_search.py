"""The random-search baseline: the same budget, journal, history and outputs as NSGA-II.

Each generation proposes ``population`` uniformly random genomes (re-drawn, bounded by
``novelty_retries``, while their key is already recorded), exactly like NSGA-II's generation 0
with the same seed. Nothing is selected: the "population" is the latest batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from deap import base

from nas.config import SearchConfig
from nas.ga import Individual, random_individuals
from nas.records import EvalRecord
from nas.state import Member


class RandomSearch:
    """Uniform random proposals; no survival."""

    def __init__(self, toolbox: base.Toolbox, config: SearchConfig) -> None:
        """Bind the toolbox (its ``genome`` operator) and settings."""
        self.toolbox, self.config = toolbox, config

    def propose(
        self, population: Sequence[Member], cache: dict[str, EvalRecord], seen: Collection[str], generation: int
    ) -> list[Individual]:
        """``population`` random individuals."""
        return random_individuals(self.toolbox, self.config.population, seen, self.config)

    def survive(
        self, population: Sequence[Member], offspring: Sequence[Individual], cache: dict[str, EvalRecord]
    ) -> list[Member]:
        """The batch itself."""
        return [Member(list(ind), ind.key) for ind in offspring]
