"""Functions on an ArchSpec that find its search space through the registry (``spec.space``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from common.errors import UserError
from search_spaces._registry import create_search_space
from search_spaces.spec import ArchSpec
from search_spaces.units import UnitInfo


def trace(spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> list[UnitInfo]:
    """Units (stem, one per block, head) of ``spec`` on ``input_shape``, in pure python.

    Args:
        spec: A spec of any registered space.
        n_classes: Number of output logits (sets the head's shape and parameters).
        input_shape: Per-example input shape without batch, e.g. ``(1, 40, 101)``.

    Raises:
        UserError: The input is too small for the spec's strides, or has the wrong rank.
    """
    return create_search_space(spec.space).trace(spec, n_classes, input_shape)


def build_model(spec: ArchSpec, n_classes: int, input_shape: Sequence[int]) -> nn.Module:
    """``create_search_space(spec.space).build(spec, n_classes, input_shape)``."""
    return create_search_space(spec.space).build(spec, n_classes, input_shape)


def spec_from_dict(data: Mapping[str, Any]) -> ArchSpec:
    """Inverse of :meth:`ArchSpec.to_dict`: ``{"space": ..., "arch": ...}`` -> validated spec.

    Raises:
        UserError: Missing keys, unknown space, or a string the space cannot parse.
    """
    if "space" not in data or "arch" not in data:
        raise UserError(f"an arch record needs the keys 'space' and 'arch', got {sorted(data)}")
    return create_search_space(data["space"]).parse(data["arch"])
