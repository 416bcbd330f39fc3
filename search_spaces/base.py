"""The SearchSpace contract: genes and their choices, genome <-> ArchSpec <-> string, model building."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from common.errors import UserError
from search_spaces.blocks import build_network
from search_spaces.spec import ArchSpec, parse_arch
from search_spaces.units import UnitInfo

Genome = list[int]


GENE_KINDS = ("ordinal", "categorical")


@dataclass(frozen=True)
class Gene:
    """One gene: its name, the choices its integer value indexes, and whether they have an order.

    Attributes:
        name: Gene name (unique in its space).
        choices: The values, in index order.
        kind: ``"ordinal"`` when neighbouring indices are similar choices (widths, depths, kernels,
            strides, dropout), so a search may step along them; ``"categorical"`` when the order is
            arbitrary (block type, SE on/off, kernels of different shapes).
    """

    name: str
    choices: tuple[Any, ...]
    kind: str = "ordinal"

    def __post_init__(self) -> None:
        if self.kind not in GENE_KINDS:
            raise ValueError(f"gene {self.name}: kind must be one of {', '.join(GENE_KINDS)}, got {self.kind!r}")

    def index(self, value: Any, where: str) -> int:
        """Index of ``value`` among the choices.

        Raises:
            UserError: ``value`` is not a choice; the message names ``where`` and the choices.
        """
        if value not in self.choices:
            raise UserError(f"{where}: {value!r} is not a choice of gene '{self.name}'; choices: {_show(self.choices)}")
        return self.choices.index(value)


class SearchSpace(ABC):
    """A space of architectures addressed by integer genomes.

    Gene ``i`` takes values ``0..gene_bounds[i]`` (inclusive) and indexes choice list ``i``, so
    DEAP's ``mutUniformInt(ind, low=0, up=space.gene_bounds, indpb=...)`` and ``cxUniform``
    work on plain ``list[int]`` genomes. Several genomes may decode to one spec (genes of unused
    stages are ignored); :meth:`canonical` picks the one :meth:`encode` returns.

    Subclasses define ``name``, ``input_kind``, ``genes``, :meth:`_decode_values`,
    :meth:`_encode_values`, :meth:`smallest`, :meth:`largest` and :meth:`trace`.
    """

    name: str
    input_kind: str  # "logmel": (batch, C, n_mels, frames); "waveform": (batch, C, n_samples)
    genes: tuple[Gene, ...]

    @property
    def gene_names(self) -> list[str]:
        """Gene names, in genome order."""
        return [g.name for g in self.genes]

    @property
    def gene_bounds(self) -> list[int]:
        """Inclusive upper bound of each gene (the lower bound is 0)."""
        return [len(g.choices) - 1 for g in self.genes]

    @property
    def gene_kinds(self) -> list[str]:
        """``"ordinal"`` or ``"categorical"`` per gene, in genome order (see :class:`Gene`)."""
        return [g.kind for g in self.genes]

    def decode(self, genome: Sequence[int]) -> ArchSpec:
        """The spec a genome stands for.

        Raises:
            UserError: Wrong length, or a gene out of its range (the message names gene and range).
        """
        self._check_genome(genome)
        values = {g.name: g.choices[int(v)] for g, v in zip(self.genes, genome, strict=True)}
        return self._decode_values(values)

    def encode(self, spec: ArchSpec) -> Genome:
        """The canonical genome of ``spec`` (inactive genes are 0).

        Raises:
            UserError: The spec uses a value that is not a choice of this space.
        """
        if spec.space != self.name:
            raise UserError(f"spec '{spec}' belongs to space '{spec.space}', not '{self.name}'")
        values = self._encode_values(spec)
        genome = [g.index(values[g.name], f"{self.name} spec '{spec}'") if g.name in values else 0 for g in self.genes]
        decoded = self.decode(genome)
        if decoded != spec:
            raise UserError(f"{spec!r} cannot be expressed in search space '{self.name}'; nearest: {decoded!r}")
        return genome

    def canonical(self, genome: Sequence[int]) -> Genome:
        """The genome with inactive genes zeroed: equal for every genome of the same spec."""
        return self.encode(self.decode(genome))

    def parse(self, text: str) -> ArchSpec:
        """The spec of a canonical string (grammar in :class:`~search_spaces.spec.ArchSpec`).

        Raises:
            UserError: Bad grammar, a non-canonical spelling, or a value outside the space's choices.
        """
        spec = parse_arch(text.strip(), self.name)
        self.encode(spec)  # validates every value against the choices
        return spec

    def sample(self, rng: random.Random | np.random.Generator) -> ArchSpec:
        """A uniformly random genome, decoded (accepts ``random.Random`` or a numpy ``Generator``)."""
        return self.decode(self.random_genome(rng))

    def random_genome(self, rng: random.Random | np.random.Generator) -> Genome:
        """Each gene drawn uniformly from its range (not canonicalised)."""
        if isinstance(rng, np.random.Generator):
            return [int(rng.integers(0, b + 1)) for b in self.gene_bounds]
        return [rng.randint(0, b) for b in self.gene_bounds]

    def build(self, spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> nn.Module:
        """The network of ``spec``: ``model.stem``, ``model.blocks`` (one entry per block), ``model.head``.

        Args:
            spec: A spec of this space.
            n_classes: Number of output logits.
            input_shape: Per-example input shape without batch, e.g. ``(1, 40, 101)``.

        Raises:
            UserError: The input is too small for the spec's strides, or has the wrong rank.
        """
        return build_network(str(spec), self.trace(spec, n_classes, input_shape))

    @abstractmethod
    def trace(self, spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> list[UnitInfo]:
        """Walk the shapes through the network without torch: stem, one unit per block, head.

        Raises:
            UserError: The input is too small for the spec's strides, or has the wrong rank.
        """

    @abstractmethod
    def unit_catalog(self, n_classes: int, input_shape: Sequence[int]) -> set[UnitInfo]:
        """Every unit (stem, block, head) that any spec of this space can contain on ``input_shape``.

        Exact, not sampled: latency tables are collected for exactly these units' ops. It walks the
        reachable (channels, extent) states stage by stage, so it is fast even when the space has
        millions of specs.
        """

    @abstractmethod
    def smallest(self) -> ArchSpec:
        """The spec with the fewest parameters."""

    @abstractmethod
    def largest(self) -> ArchSpec:
        """The spec with the most parameters."""

    @abstractmethod
    def _decode_values(self, values: dict[str, Any]) -> ArchSpec:
        """Spec from the chosen value of every gene (by gene name)."""

    @abstractmethod
    def _encode_values(self, spec: ArchSpec) -> dict[str, Any]:
        """Chosen value of every active gene of ``spec`` (inactive genes are left out)."""

    def _check_genome(self, genome: Sequence[int]) -> None:
        if len(genome) != len(self.genes):
            raise UserError(f"a '{self.name}' genome has {len(self.genes)} genes, got {len(genome)}")
        for i, (gene, value) in enumerate(zip(self.genes, genome, strict=True)):
            if not isinstance(value, (int, np.integer)) or not 0 <= value < len(gene.choices):
                raise UserError(
                    f"gene {i} '{gene.name}' of a '{self.name}' genome is {value!r}, outside its range "
                    f"0..{len(gene.choices) - 1} (choices: {_show(gene.choices)})"
                )


def _show(choices: Sequence[Any]) -> str:
    return ", ".join(str(c) for c in choices)
