"""wave1d: the classic conv1d classifier on raw samples (M5-like), parameterised.

Input ``(batch, C, n_samples)``, e.g. ``(B, 1, 16000)``; ``(batch, C, 1, n_samples)`` (the layout
of ``Features.batch`` for the ``waveform`` feature kind) is accepted too. Each layer is
conv1d-bn-relu followed by an optional max-pool; the first layer (the stem) has a long kernel and
a large stride, the later ones short kernels and stride 1. Then global average pooling, dropout
and a linear classifier (Dai et al., "Very deep CNNs for raw waveforms", ICASSP 2017).
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

MAX_LAYERS = 4
STEM_WIDTHS = (8, 16, 24, 32, 48, 64)
STEM_KERNELS = ((20,), (40,), (80,), (160,))
STEM_STRIDES = (2, 4, 8, 16)
LAYER_COUNTS = (2, 3, 4)
WIDTHS = (16, 24, 32, 48, 64, 96, 128)
KERNELS = ((3,), (5,), (7,))
POOLS = (1, 2, 4)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)


@register_search_space
class Wave1dSpace(SearchSpace):
    """Conv1d classifier on waveforms: 15 genes (stem 4, layer count 1, 3 per later layer x 3, dropout 1).

    Layers are numbered from 1 (the stem); genes of layers beyond ``n_layers`` are inactive.
    """

    name = "wave1d"
    input_kind = "waveform"
    genes = (
        Gene("l1_width", STEM_WIDTHS),
        Gene("l1_kernel", STEM_KERNELS),
        Gene("l1_stride", STEM_STRIDES),
        Gene("l1_pool", POOLS),
        Gene("n_layers", LAYER_COUNTS),
        *(
            Gene(f"l{i}_{field}", choices)
            for i in range(2, MAX_LAYERS + 1)
            for field, choices in (("width", WIDTHS), ("kernel", KERNELS), ("pool", POOLS))
        ),
        Gene("dropout", DROPOUTS),
    )

    def _decode_values(self, values: dict[str, Any]) -> ArchSpec:
        layers = [
            LayerSpec("c1d", values["l1_width"], values["l1_kernel"], values["l1_stride"], pool=values["l1_pool"])
        ]
        for i in range(2, values["n_layers"] + 1):
            layers.append(LayerSpec("c1d", values[f"l{i}_width"], values[f"l{i}_kernel"], 1, pool=values[f"l{i}_pool"]))
        return ArchSpec(self.name, tuple(layers), 0, values["dropout"])

    def _encode_values(self, spec: ArchSpec) -> dict[str, Any]:
        if any(layer.op != "c1d" for layer in spec.layers):
            raise UserError(f"wave1d spec '{spec}': every layer must be a 'c1d' layer (conv1d-bn-relu-maxpool)")
        values: dict[str, Any] = {"n_layers": len(spec.layers), "dropout": spec.dropout, "l1_stride": spec.stem.stride}
        for i, layer in enumerate(spec.layers, start=1):
            values |= {f"l{i}_width": layer.width, f"l{i}_kernel": layer.kernel, f"l{i}_pool": layer.pool}
        return values

    def smallest(self) -> ArchSpec:
        """Fewest parameters and MACs: two narrow layers, short kernels, largest stride."""
        stem = LayerSpec("c1d", STEM_WIDTHS[0], STEM_KERNELS[0], STEM_STRIDES[-1], pool=POOLS[-1])
        layer = LayerSpec("c1d", WIDTHS[0], KERNELS[0], 1, pool=POOLS[-1])
        return ArchSpec(self.name, (stem, layer), 0, 0.0)

    def largest(self) -> ArchSpec:
        """Most parameters: four widest layers with the longest kernels (stride and pools do not add any)."""
        stem = LayerSpec("c1d", STEM_WIDTHS[-1], STEM_KERNELS[-1], STEM_STRIDES[-1], pool=POOLS[-1])
        layer = LayerSpec("c1d", WIDTHS[-1], KERNELS[-1], 1, pool=POOLS[-1])
        return ArchSpec(self.name, (stem, *[layer] * (MAX_LAYERS - 1)), 0, DROPOUTS[-1])

    def trace(self, spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> list[UnitInfo]:
        """Shapes of every layer and the head on ``input_shape = (C, n_samples)`` or ``(C, 1, n_samples)``.

        Raises:
            UserError: Wrong rank, or too few samples for the strides and pools.
        """
        shape = _check_input(input_shape, n_classes)
        check_extent("samples", shape[1], list(_steps(spec)), str(spec))
        units = []
        for i, layer in enumerate(spec.layers):
            cin, n = shape
            n_conv = conv_out(n, layer.kernel[0], layer.stride)
            shape = (layer.width, n_conv // layer.pool)
            kind = "stem" if i == 0 else "conv"
            params = unit_params(kind, cin, layer.width, layer.kernel)
            macs = unit_macs(kind, (cin, n), (layer.width, n_conv), layer.kernel, 1, False)
            unit = UnitInfo(
                kind, (cin, n), shape, layer.kernel, layer.stride, pool=layer.pool, params=params, macs=macs
            )
            units.append(unit)
        return [*units, head_unit(shape, n_classes, dropout=spec.dropout)]

    def unit_catalog(self, n_classes: int, input_shape: Sequence[int]) -> set[UnitInfo]:
        """Every layer and head unit any wave1d spec can contain on ``input_shape`` (exact).

        Walks the reachable ``(channels, samples)`` states layer by layer, keeping only states whose
        strides and pools fit the input (as :meth:`trace` requires).
        """
        cin, n = _check_input(input_shape, n_classes)
        units: set[UnitInfo] = set()
        frontier = {(cin, n)}
        for layer in range(1, MAX_LAYERS + 1):
            if layer == 1:
                options = product(STEM_WIDTHS, STEM_KERNELS, STEM_STRIDES, POOLS)
            else:
                options = product(WIDTHS, KERNELS, (1,), POOLS)
            reached = set()
            for (c, length), (width, kernel, stride, pool) in product(frontier, list(options)):
                n_conv = conv_out(length, kernel[0], stride) if length >= stride else 0
                if n_conv < pool or length < stride:
                    continue
                kind = "stem" if layer == 1 else "conv"
                unit = UnitInfo(
                    kind,
                    (c, length),
                    (width, n_conv // pool),
                    kernel,
                    stride,
                    pool=pool,
                    params=unit_params(kind, c, width, kernel),
                    macs=unit_macs(kind, (c, length), (width, n_conv), kernel, 1, False),
                )
                units.add(unit)
                reached.add(unit.out_shape)
            frontier = reached
            if layer >= LAYER_COUNTS[0]:
                units.update(head_unit(shape, n_classes) for shape in frontier)
        return units


def _steps(spec: ArchSpec) -> Iterator[tuple[str, int, int]]:
    for i, layer in enumerate(spec.layers, start=1):
        yield f"layer {i} conv (stride {layer.stride})", layer.kernel[0], layer.stride
        if layer.pool > 1:
            yield f"layer {i} max-pool ({layer.pool})", 0, layer.pool


def _check_input(input_shape: Sequence[int], n_classes: int) -> tuple[int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 3 and shape[1] == 1:
        shape = (shape[0], shape[2])
    if len(shape) != 2 or min(shape) < 1:
        raise UserError(
            f"wave1d takes input_shape (channels, samples), e.g. (1, 16000), or (channels, 1, samples), "
            f"without the batch; got {tuple(input_shape)}"
        )
    if n_classes < 1:
        raise UserError(f"n_classes must be at least 1, got {n_classes}")
    return shape  # type: ignore[return-value]
