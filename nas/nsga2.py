"""The NSGA-II strategy with constraint-domination (Deb et al. 2002; Deb 2000 for constraints).

Generation 0 is a random population. Each later generation: constrained binary tournaments
(DCD) pick ``population`` parents, variation breeds as many children (:func:`nas.ga.vary`),
and constrained survival keeps the best ``population`` of parents plus children
(:func:`nas.ranking.survival`). Random draws happen only in ``propose``; survival is a pure
function of the records, so the search is a deterministic function of the seed and the results.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from deap import base

from nas.config import SearchConfig
from nas.ga import Individual, random_individuals, vary
from nas.problem import Constraint, ObjectiveSpec
from nas.ranking import Ranked
from nas.records import EvalRecord
from nas.state import Member
from nas.violation import charged_violation


def ranked(record: EvalRecord, objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint] = ()) -> Ranked:
    """The ranking view of a record: objective values in minimisation form and its charged violation.

    Constraints the record was not measured on (rejected before evaluation) are charged their
    worst case (:mod:`nas.violation`), so it never outranks an evaluated candidate that misses them.
    """
    values = tuple(v * o.sign for v, o in zip(record.objective_values(objectives), objectives, strict=True))
    return Ranked(values, charged_violation(record, objectives, constraints), record.violation)


def as_individual(member: Member) -> Individual:
    """A population member as a DEAP-operable individual."""
    ind = Individual(member.genome)
    ind.key = member.key
    return ind


class NSGA2:
    """Constrained NSGA-II proposal and survival."""

    def __init__(
        self,
        toolbox: base.Toolbox,
        config: SearchConfig,
        objectives: Sequence[ObjectiveSpec],
        constraints: Sequence[Constraint] = (),
    ) -> None:
        """Bind the toolbox (see :func:`nas.ga.build_toolbox`), settings, objectives and constraints."""
        self.toolbox, self.config, self.objectives, self.constraints = toolbox, config, objectives, constraints

    def propose(
        self, population: Sequence[Member], cache: dict[str, EvalRecord], seen: Collection[str], generation: int
    ) -> list[Individual]:
        """Generation 0: random individuals; later: tournament, crossover and mutation."""
        if generation == 0:
            return random_individuals(self.toolbox, self.config.population, seen, self.config)
        items = [ranked(cache[m.key], self.objectives, self.constraints) for m in population]
        crowding = [m.crowding for m in population]
        picks = self.toolbox.select_parents(items, crowding, len(population))
        parents = [as_individual(population[i]) for i in picks]
        return vary(self.toolbox, parents, seen, self.config)

    def survive(
        self, population: Sequence[Member], offspring: Sequence[Individual], cache: dict[str, EvalRecord]
    ) -> list[Member]:
        """The next population: the best ``population`` of current members plus offspring."""
        pool = [Member(list(m.genome), m.key) for m in population]
        pool += [Member(list(ind), ind.key) for ind in offspring]
        items = [ranked(cache[m.key], self.objectives, self.constraints) for m in pool]
        chosen, crowding = self.toolbox.select(items, self.config.population)
        return [Member(pool[i].genome, pool[i].key, crowding[i]) for i in chosen]
