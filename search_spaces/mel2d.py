"""mel2d: a stem and 3-5 stages of 2D conv / depthwise-separable / inverted-residual blocks over log-mel.

Input ``(batch, C, n_mels, frames)``, e.g. ``(B, 1, 40, 101)``. Kernels are square 3x3 or 5x5 in
the stages: ORT and MCU kernels are tuned for them, and each extra kernel shape multiplies the
latency-table keys. The stem may also use DS-CNN's rectangular 4x10 (4 mel bins x 10 frames),
so the Hello Edge baseline is representable; wide time context otherwise comes from the strides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import product
from typing import Any

from common.errors import UserError
from search_spaces._registry import register_search_space
from search_spaces.base import Gene, SearchSpace
from search_spaces.spec import ArchSpec, LayerSpec
from search_spaces.units import UnitInfo, check_extent, conv_out, head_unit, unit_macs, unit_params

MAX_STAGES = 5
STEM_WIDTHS = (8, 12, 16, 24, 32, 48, 64)
STEM_KERNELS = ((3, 3), (5, 5), (4, 10))
STRIDES = (1, 2)
STAGE_COUNTS = (3, 4, 5)
BLOCKS = ("c", "ds", "ir")
EXPANSIONS = (1, 2, 4, 6)
DEPTHS = (1, 2, 3)
WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
KERNELS = ((3, 3), (5, 5))
HEAD_WIDTHS = (0, 32, 64, 128, 256)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
_KIND = {"c": "conv", "ds": "ds", "ir": "ir"}


def _stage_genes(i: int) -> list[Gene]:
    return [
        Gene(f"s{i}_block", BLOCKS, "categorical"),
        Gene(f"s{i}_expansion", EXPANSIONS),  # active only for ir
        Gene(f"s{i}_depth", DEPTHS),
        Gene(f"s{i}_width", WIDTHS),
        Gene(f"s{i}_kernel", KERNELS),
        Gene(f"s{i}_se", (False, True), "categorical"),
        Gene(f"s{i}_stride", STRIDES),
    ]


@register_search_space
class Mel2dSpace(SearchSpace):
    """2D CNN over log-mel: 41 genes (stem 3, stage count 1, 7 per stage x 5, head 2).

    Genes of stages beyond ``n_stages`` and the expansion of non-``ir`` stages are inactive.
    """

    name = "mel2d"
    input_kind = "logmel"
    genes = (
        Gene("stem_width", STEM_WIDTHS),
        Gene("stem_kernel", STEM_KERNELS, "categorical"),  # 3x3, 5x5, 4x10: no single order
        Gene("stem_stride", STRIDES),
        Gene("n_stages", STAGE_COUNTS),
        *(g for i in range(1, MAX_STAGES + 1) for g in _stage_genes(i)),
        Gene("head_width", HEAD_WIDTHS),
        Gene("dropout", DROPOUTS),
    )

    def _decode_values(self, values: dict[str, Any]) -> ArchSpec:
        stem = LayerSpec("c", values["stem_width"], values["stem_kernel"], values["stem_stride"])
        stages = []
        for i in range(1, values["n_stages"] + 1):
            op = values[f"s{i}_block"]
            stages.append(
                LayerSpec(
                    op=op,
                    width=values[f"s{i}_width"],
                    kernel=values[f"s{i}_kernel"],
                    stride=values[f"s{i}_stride"],
                    repeat=values[f"s{i}_depth"],
                    expansion=values[f"s{i}_expansion"] if op == "ir" else 1,
                    se=values[f"s{i}_se"],
                )
            )
        return ArchSpec(self.name, (stem, *stages), values["head_width"], values["dropout"])

    def _encode_values(self, spec: ArchSpec) -> dict[str, Any]:
        stem = spec.stem
        if stem.op != "c":
            raise UserError(f"mel2d spec '{spec}': the stem must be a 'c' layer (conv-bn-relu), got '{stem.op}'")
        values = {
            "stem_width": stem.width,
            "stem_kernel": stem.kernel,
            "stem_stride": stem.stride,
            "n_stages": len(spec.stages),
            "head_width": spec.head_width,
            "dropout": spec.dropout,
        }
        for i, stage in enumerate(spec.stages, start=1):
            values |= {
                f"s{i}_block": stage.op,
                f"s{i}_depth": stage.repeat,
                f"s{i}_width": stage.width,
                f"s{i}_kernel": stage.kernel,
                f"s{i}_se": stage.se,
                f"s{i}_stride": stage.stride,
            }
            if stage.op == "ir":
                values[f"s{i}_expansion"] = stage.expansion
        return values

    def smallest(self) -> ArchSpec:
        """Fewest parameters and MACs: 8 channels, 3 single-block depthwise-separable stages, all stride 2."""
        stages = [LayerSpec("ds", 8, (3, 3), 2)] * STAGE_COUNTS[0]
        return ArchSpec(self.name, (LayerSpec("c", 8, (3, 3), 2), *stages), 0, 0.0)

    def largest(self) -> ArchSpec:
        """Most parameters: widest, deepest ``ir`` e6 k5 SE stages and widest head.

        Strides are 2: they change no parameter and keep the model runnable (and fast) on 40x101.
        """
        stage = LayerSpec("ir", WIDTHS[-1], KERNELS[-1], 2, DEPTHS[-1], EXPANSIONS[-1], se=True)
        stem = LayerSpec("c", STEM_WIDTHS[-1], STEM_KERNELS[-1], 2)
        return ArchSpec(self.name, (stem, *[stage] * MAX_STAGES), HEAD_WIDTHS[-1], DROPOUTS[-1])

    def trace(self, spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> list[UnitInfo]:
        """Shapes of stem, every block and head on ``input_shape = (C, n_mels, frames)``.

        Raises:
            UserError: Wrong rank, or too few mel bins/frames for the strides (names which axis and
                how many it needs).
        """
        shape = _check_input(input_shape, n_classes)
        plan = list(_plan(spec))
        arch = str(spec)
        check_extent("mel bins", shape[1], [(label, k[0], s) for label, _, _, k, s, _, _ in plan], arch)
        check_extent("frames", shape[2], [(label, k[1], s) for label, _, _, k, s, _, _ in plan], arch)
        units = []
        for _, kind, cout, kernel, stride, expansion, se in plan:
            units.append(_unit(kind, shape, cout, kernel, stride, expansion, se))
            shape = units[-1].out_shape
        head = head_unit(shape, n_classes, spec.head_width, spec.dropout)
        return [*units, head]

    def unit_catalog(self, n_classes: int, input_shape: Sequence[int]) -> set[UnitInfo]:
        """Every stem, block and head unit any mel2d spec can contain on ``input_shape`` (exact).

        Walks the reachable ``(channels, mel bins, frames)`` states stage by stage: the units of a
        stage depend only on its input state and its own genes, and a state is kept only when the
        strides so far fit the input (as :meth:`trace` requires).
        """
        cin, h, w = _check_input(input_shape, n_classes)
        units: set[UnitInfo] = set()
        frontier: set[tuple[int, int, int]] = set()
        for width, kernel, stride in product(STEM_WIDTHS, STEM_KERNELS, STRIDES):
            if h >= stride and w >= stride:
                unit = _unit("stem", (cin, h, w), width, kernel, stride, 1, False)
                units.add(unit)
                frontier.add(unit.out_shape)
        for stage in range(1, MAX_STAGES + 1):
            frontier = _stage_units(frontier, units)
            if stage >= STAGE_COUNTS[0]:
                for shape, hidden in product(frontier, HEAD_WIDTHS):
                    units.add(head_unit(shape, n_classes, hidden))
        return units


def _stage_units(frontier: set[tuple[int, int, int]], units: set[UnitInfo]) -> set[tuple[int, int, int]]:
    """Add the units of one stage entered from every state in ``frontier``; return the states it reaches."""
    reached = set()
    choices = [(b, e) for b in BLOCKS for e in (EXPANSIONS if b == "ir" else (1,))]
    for (c, h, w), (block, expansion), width, kernel, se, stride in product(
        frontier, choices, WIDTHS, KERNELS, (False, True), STRIDES
    ):
        if h < stride or w < stride:
            continue
        kind = _KIND[block]
        first = _unit(kind, (c, h, w), width, kernel, stride, expansion, se)
        units.add(first)
        repeat = _unit(kind, first.out_shape, width, kernel, 1, expansion, se)
        units.add(repeat)  # depth 2 and 3 add the same stride-1 block
        reached.add(first.out_shape)
    return reached


def _unit(
    kind: str, in_shape: tuple[int, int, int], cout: int, kernel: tuple[int, ...], stride: int, expansion: int, se: bool
) -> UnitInfo:
    cin, h, w = in_shape
    out = (cout, conv_out(h, kernel[0], stride), conv_out(w, kernel[1], stride))
    residual = kind in ("ds", "ir") and stride == 1 and cin == cout
    params = unit_params(kind, cin, cout, kernel, expansion, se)
    macs = unit_macs(kind, in_shape, out, kernel, expansion, se)
    return UnitInfo(kind, in_shape, out, kernel, stride, expansion, se, residual, params=params, macs=macs)


def _plan(spec: ArchSpec) -> Iterator[tuple[str, str, int, tuple[int, ...], int, int, bool]]:
    """(label, kind, out channels, kernel, stride, expansion, se) of the stem and every block."""
    stem = spec.stem
    yield "the stem", "stem", stem.width, stem.kernel, stem.stride, 1, False
    for i, stage in enumerate(spec.stages, start=1):
        for j in range(stage.repeat):
            stride = stage.stride if j == 0 else 1
            label = f"stage {i} block {j + 1} (stride {stride})"
            yield label, _KIND[stage.op], stage.width, stage.kernel, stride, stage.expansion, stage.se


def _check_input(input_shape: Sequence[int], n_classes: int) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(
            f"mel2d takes input_shape (channels, mel bins, frames), e.g. (1, 40, 101), without the batch; "
            f"got {tuple(input_shape)}"
        )
    if n_classes < 1:
        raise UserError(f"n_classes must be at least 1, got {n_classes}")
    return shape  # type: ignore[return-value]
