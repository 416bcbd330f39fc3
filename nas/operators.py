"""Variation operators (crossover + mutation) on integer genomes whose genes are ordinal or categorical.

A genome is ``list[int]``; gene ``i`` indexes the choices ``0..bounds[i]``. ``SearchConfig.variation``
picks one of :data:`VARIATIONS`:

* ``uniform``: uniform crossover (``tools.cxUniform``, ``cx_indpb``) and uniform reset
  (``tools.mutUniformInt``, ``mut_indpb``) on every gene, whatever its kind: the engine's first
  operators, bit for bit.
* ``sbx``: on ordinal genes, simulated binary crossover (``tools.cxSimulatedBinaryBounded``,
  ``sbx_eta``) and polynomial mutation (``tools.mutPolynomialBounded``, ``pm_eta``, ``mut_indpb``) on
  the choice index, rounded to the nearest choice (pymoo's recipe for integer variables: SBX and
  PM with ``RoundingRepair``); a gene picked for mutation always moves: a perturbation that
  rounds back to its value becomes a one-choice step in the perturbation's direction (without it,
  a gene with three choices would hardly ever mutate). On categorical genes: uniform crossover
  and uniform reset, as ``uniform``.
* ``step``: uniform crossover on every gene; on ordinal genes a bounded step mutation (1 to
  ``step_max`` choices up or down, reflected at the bounds), on categorical ones a uniform reset.

Every operator draws from the global ``random`` module only (the search runs it inside
``SearchRandom.active()``), changes its individuals in place and returns them (DEAP's
convention), and leaves every gene an ``int`` within ``0..bounds[i]``. A gene with one choice
is never touched. This module knows nothing of the search loop; :func:`build_variation` binds a
variation to a :class:`GeneLayout` and the parameters of a ``SearchConfig``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from deap import tools

from nas.problem import CATEGORICAL, GENE_KINDS, ORDINAL

if TYPE_CHECKING:
    from nas.config import SearchConfig

VARIATIONS = {
    "uniform": "uniform crossover and uniform reset on every gene",
    "sbx": "SBX and polynomial mutation, rounded, on ordinal genes; uniform on categorical ones",
    "step": "uniform crossover; bounded step mutation on ordinal genes, uniform reset on categorical ones",
}
DEFAULT_VARIATION = "sbx"  # chosen by benchmarks/bench_engine.py (see nas/README.md)
ETA_RANGE = (0.0, 100.0)  # accepted distribution indices of SBX and polynomial mutation

Mate = Callable[[list, list], tuple]
Mutate = Callable[[list], tuple]


@dataclass(frozen=True)
class GeneLayout:
    """The upper bound and kind of every gene.

    Attributes:
        bounds: Inclusive upper bound per gene (the lower bound is 0).
        kinds: ``"ordinal"`` or ``"categorical"`` per gene.
    """

    bounds: tuple[int, ...]
    kinds: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.bounds) != len(self.kinds):
            raise ValueError(f"{len(self.bounds)} gene bounds but {len(self.kinds)} gene kinds")
        unknown = sorted({k for k in self.kinds if k not in GENE_KINDS})
        if unknown:
            raise ValueError(f"unknown gene kind(s) {', '.join(unknown)}; kinds: {', '.join(GENE_KINDS)}")

    @property
    def ordinal(self) -> tuple[int, ...]:
        """Indices of the ordinal genes with more than one choice."""
        return tuple(i for i, (b, k) in enumerate(zip(self.bounds, self.kinds, strict=True)) if b > 0 and k == ORDINAL)

    @property
    def categorical(self) -> tuple[int, ...]:
        """Indices of the categorical genes with more than one choice."""
        pairs = zip(self.bounds, self.kinds, strict=True)
        return tuple(i for i, (b, k) in enumerate(pairs) if b > 0 and k == CATEGORICAL)


@dataclass(frozen=True)
class Variation:
    """A crossover and a mutation bound to a gene layout and their parameters.

    Attributes:
        name: The key in :data:`VARIATIONS`.
        mate: ``mate(a, b)`` recombines two individuals in place.
        mutate: ``mutate(ind)`` mutates one individual in place.
    """

    name: str
    mate: Mate
    mutate: Mutate


def build_variation(layout: GeneLayout, config: SearchConfig) -> Variation:
    """The variation ``config.variation`` on ``layout``, with the parameters of ``config``.

    Raises:
        ValueError: An unknown variation name (the known ones are listed).
    """
    builders = {"uniform": _uniform, "sbx": _sbx, "step": _step}
    if config.variation not in builders:
        raise ValueError(f"variation must be one of {', '.join(VARIATIONS)}; got {config.variation!r}")
    indpb = config.mut_indpb if config.mut_indpb is not None else 1.0 / len(layout.bounds)
    mate, mutate = builders[config.variation](layout, config, indpb)
    return Variation(config.variation, mate, mutate)


def _uniform(layout: GeneLayout, config: SearchConfig, indpb: float) -> tuple[Mate, Mutate]:
    up = list(layout.bounds)
    mate = partial(tools.cxUniform, indpb=config.cx_indpb)
    return mate, partial(tools.mutUniformInt, low=[0] * len(up), up=up, indpb=indpb)


def _sbx(layout: GeneLayout, config: SearchConfig, indpb: float) -> tuple[Mate, Mutate]:
    ordinal, categorical = layout.ordinal, layout.categorical
    up = [float(layout.bounds[i]) for i in ordinal]
    low = [0.0] * len(ordinal)

    def mate(a: list, b: list) -> tuple:
        if ordinal:
            xa, xb = [float(a[i]) for i in ordinal], [float(b[i]) for i in ordinal]
            tools.cxSimulatedBinaryBounded(xa, xb, eta=config.sbx_eta, low=low, up=up)
            for j, i in enumerate(ordinal):
                a[i], b[i] = _nearest(xa[j], layout.bounds[i]), _nearest(xb[j], layout.bounds[i])
        _uniform_crossover(a, b, categorical, config.cx_indpb)
        return a, b

    def mutate(ind: list) -> tuple:
        if ordinal:
            before = [float(ind[i]) for i in ordinal]
            xs = list(before)
            tools.mutPolynomialBounded(xs, eta=config.pm_eta, low=low, up=up, indpb=indpb)
            for j, i in enumerate(ordinal):
                if xs[j] != before[j]:  # picked for mutation: it moves by at least one choice
                    ind[i] = _moved(ind[i], xs[j], layout.bounds[i])
        _uniform_reset(ind, categorical, layout.bounds, indpb)
        return (ind,)

    return mate, mutate


def _step(layout: GeneLayout, config: SearchConfig, indpb: float) -> tuple[Mate, Mutate]:
    ordinal, categorical = layout.ordinal, layout.categorical

    def mate(a: list, b: list) -> tuple:
        return tools.cxUniform(a, b, indpb=config.cx_indpb)

    def mutate(ind: list) -> tuple:
        for i in ordinal:
            if random.random() < indpb:
                ind[i] = _stepped(ind[i], layout.bounds[i], config.step_max)
        _uniform_reset(ind, categorical, layout.bounds, indpb)
        return (ind,)

    return mate, mutate


def _nearest(x: float, bound: int) -> int:
    """The choice nearest to ``x`` (halves round up), within ``0..bound``."""
    return min(max(math.floor(x + 0.5), 0), bound)


def _moved(value: int, x: float, bound: int) -> int:
    """``x`` rounded, or one choice from ``value`` towards ``x`` when it rounds back to ``value``.

    ``x`` lies in ``0..bound`` and differs from ``value``, so the step stays within the bounds.
    """
    target = _nearest(x, bound)
    if target != value:
        return target
    return value + 1 if x > value else value - 1


def _stepped(value: int, bound: int, step_max: int) -> int:
    """``value`` moved by 1..``step_max`` choices (uniformly, either way), reflected at the bounds."""
    step = random.randint(1, min(step_max, bound))
    moved = value + step if random.random() < 0.5 else value - step
    if not 0 <= moved <= bound:
        moved = 2 * value - moved  # the other way
    return min(max(moved, 0), bound)


def _uniform_crossover(a: list, b: list, genes: Sequence[int], indpb: float) -> None:
    """``tools.cxUniform`` on the genes ``genes`` of ``a`` and ``b``."""
    if not genes:
        return
    xa, xb = [a[i] for i in genes], [b[i] for i in genes]
    tools.cxUniform(xa, xb, indpb=indpb)
    for j, i in enumerate(genes):
        a[i], b[i] = xa[j], xb[j]


def _uniform_reset(ind: list, genes: Sequence[int], bounds: Sequence[int], indpb: float) -> None:
    """``tools.mutUniformInt`` on the genes ``genes`` of ``ind``."""
    if not genes:
        return
    xs = [ind[i] for i in genes]
    tools.mutUniformInt(xs, low=[0] * len(genes), up=[bounds[i] for i in genes], indpb=indpb)
    for j, i in enumerate(genes):
        ind[i] = xs[j]
