"""The DEAP toolbox and the variation step: integer genomes with per-gene bounds.

All operators are registered in :func:`build_toolbox` under snake_case aliases; the loop only
calls them through the toolbox. They draw from the global ``random`` module, so callers run them
inside ``SearchRandom.active()``.

Variation follows DEAP's NSGA-II example (``varAnd``-style): pairs of tournament winners are
recombined with probability ``cx_prob``, each child is mutated with probability ``mut_prob``;
which crossover and mutation is ``SearchConfig.variation`` (:mod:`nas.operators`). A child whose
key was already evaluated (or already proposed in this generation) is mutated again, at most
``novelty_retries`` times; after that it is kept, its cached result is reused, and it is marked
``repeated`` so that the loop reports it. A child (or initial individual) that the precheck
rejects, which would cost a slot of the generation without a training, is drawn again at most
``feasible_retries`` times; after that it is kept and recorded infeasible. No loop runs
unbounded, whatever the size of the space or the constraints.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence

from deap import base, tools

from nas.config import SearchConfig
from nas.operators import GeneLayout, build_variation
from nas.problem import SearchProblem, gene_kinds
from nas.ranking import survival, tournament_dcd
from nas.records import ProblemContractError


class Individual(list):
    """A genome (``list[int]``) with its candidate key.

    Attributes:
        key: The candidate key (``problem.key``).
        repeated: Its key was still taken after every novelty retry (the proposal reuses a result).
    """

    key: str = ""
    repeated: bool = False

    def copy_individual(self) -> Individual:
        """An independent copy with the same key."""
        twin = Individual(self)
        twin.key = self.key
        return twin


def _random_genome(bounds: Sequence[int]) -> list[int]:
    return [random.randint(0, b) for b in bounds]


def build_toolbox(problem: SearchProblem, config: SearchConfig) -> base.Toolbox:
    """Register every operator the search uses, in one place.

    Aliases: ``genome`` (uniform random genes), ``individual``, ``clone``, ``key``, ``mate`` and
    ``mutate`` (the crossover and mutation of ``config.variation``, see :mod:`nas.operators`),
    ``select`` (constrained NSGA-II survival, see :mod:`nas.ranking`), ``select_parents``
    (constrained DCD tournament), ``feasible`` (whether an individual passes the precheck: True
    here; the search loop registers the real test).

    Args:
        problem: Supplies ``gene_bounds``, ``gene_kinds`` and ``key``.
        config: Supplies the variation and its parameters.
    """
    bounds = [int(b) for b in problem.gene_bounds]
    variation = build_variation(GeneLayout(tuple(bounds), tuple(gene_kinds(problem))), config)
    toolbox = base.Toolbox()
    toolbox.register("genome", _random_genome, bounds)
    toolbox.register("individual", tools.initIterate, Individual, toolbox.genome)
    toolbox.register("clone", Individual.copy_individual)
    toolbox.register("key", problem.key)
    toolbox.register("mate", variation.mate)
    toolbox.register("mutate", variation.mutate)
    toolbox.register("select", survival)
    toolbox.register("select_parents", tournament_dcd)
    toolbox.register("feasible", lambda ind: True)  # the search loop registers the precheck's verdict
    return toolbox


def _novel(
    ind: Individual,
    toolbox: base.Toolbox,
    taken: Callable[[str], bool],
    config: SearchConfig,
    fresh: Callable,
) -> None:
    """Re-draw ``ind`` in place (via ``fresh``) while it is not worth an evaluation, within bounds.

    A key already taken is drawn again at most ``config.novelty_retries`` times; a candidate the
    precheck rejects (``toolbox.feasible``) at most ``config.feasible_retries`` times. After that
    it is kept: ``ind.repeated`` is set when its key is still taken.
    """
    ind.key = toolbox.key(ind)
    if not isinstance(ind.key, str):
        raise ProblemContractError(f"problem.key must return a str, got {type(ind.key).__name__} for {list(ind)}")
    novelty, feasibility = config.novelty_retries, config.feasible_retries
    while True:
        if taken(ind.key):
            if not novelty:
                break
            novelty -= 1
        elif feasibility and not toolbox.feasible(ind):
            feasibility -= 1
        else:
            return
        fresh(ind)
        ind.key = toolbox.key(ind)
    ind.repeated = taken(ind.key)


def random_individuals(toolbox: base.Toolbox, n: int, seen: Collection[str], config: SearchConfig) -> list[Individual]:
    """``n`` uniformly random individuals, re-drawn (bounded) while taken or rejected by the precheck."""
    batch: list[Individual] = []
    keys: set[str] = set()

    def taken(key: str) -> bool:
        return key in seen or key in keys

    def redraw(ind: Individual) -> None:
        ind[:] = toolbox.genome()

    for _ in range(n):
        ind = toolbox.individual()
        _novel(ind, toolbox, taken, config, redraw)
        keys.add(ind.key)
        batch.append(ind)
    return batch


def vary(toolbox: base.Toolbox, parents: Sequence[Individual], seen: Collection[str], config: SearchConfig) -> list:
    """Offspring of ``parents`` (taken in pairs): crossover, mutation, bounded novelty retries.

    Args:
        toolbox: From :func:`build_toolbox`.
        parents: Tournament winners; an even number.
        seen: Keys evaluated so far (membership test only).
        config: Probabilities and ``novelty_retries``.

    Returns:
        One child per parent, with ``key`` set.
    """
    offspring: list[Individual] = []
    keys: set[str] = set()

    def taken(key: str) -> bool:
        return key in seen or key in keys

    def remutate(ind: Individual) -> None:
        toolbox.mutate(ind)

    for first, second in zip(parents[::2], parents[1::2], strict=True):
        a, b = toolbox.clone(first), toolbox.clone(second)
        if random.random() < config.cx_prob:
            toolbox.mate(a, b)
        for child in (a, b):
            if random.random() < config.mut_prob:
                toolbox.mutate(child)
            _novel(child, toolbox, taken, config, remutate)
            keys.add(child.key)
            offspring.append(child)
    return offspring
