"""Estimating an op the table lacks from measured ops of the same family (same op, other channels).

Within a family (see :attr:`OpKey.family`) an op's cost is a smooth function of its channel
counts, with steps where the runtime pads channels to its vector block (the table records that
block; 16 with AVX-512). The estimate is a local linear model in the *padded* channel counts and
their products (a conv's work is ``cin * cout``), fitted by least squares on the nearest measured
family members (distance in log2 channels). With too few members for that, it scales the nearest
member by the ratio of padded channel products. Padding took a table with a quarter of its ops
measured from 82 % to 91 % of random specs within +-10 % (benchmarks/bench_latency.py).

When the whole family is unmeasured (a collection cut short by its time budget), the estimate
scales the most similar measured op of the same kind, kernel, stride and activation (nearest in
work) by the ratio of work: channels x output positions x kernel area, a MAC count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NEIGHBOURS = 8  # family members used for the local fit
FLOOR_MS = 1e-4  # no estimate goes below 0.1 us


def padded(channels: Sequence[int], block: int) -> tuple[int, ...]:
    """Channel counts rounded up to the runtime's channel block (counts of 1 stay 1)."""
    return tuple(c if c <= 1 or block <= 1 else -(-c // block) * block for c in channels)


def _features(channels: np.ndarray) -> np.ndarray:
    """[1, c_i..., c_i * c_j...] per row: affine in each count, bilinear across counts."""
    cols = [np.ones(len(channels)), *channels.T]
    d = channels.shape[1]
    cols += [channels[:, i] * channels[:, j] for i in range(d) for j in range(i + 1, d)]
    return np.stack(cols, axis=1)


def estimate_from_family(
    channels: Sequence[int], members: Sequence[tuple[tuple[int, ...], float]], block: int = 1
) -> float:
    """Estimated latency (ms) of an op with ``channels`` from measured ``members`` of its family.

    Args:
        channels: The op's channel fields (:attr:`OpKey.channel_fields`).
        members: (channel fields, latency_ms) of measured ops of the same family; not empty.
        block: The runtime's channel block (see :func:`latency_tables.layout.channel_block_size`).

    Returns:
        The estimate, at least :data:`FLOOR_MS`.
    """
    if not members:
        raise ValueError("cannot interpolate from an empty family")
    target = np.asarray(padded(channels, block), dtype=float)
    xs = np.array([padded(m[0], block) for m in members], dtype=float)
    ys = np.array([m[1] for m in members], dtype=float)
    dist = np.abs(np.log2(xs) - np.log2(target)).sum(axis=1)
    order = np.argsort(dist, kind="stable")[:NEIGHBOURS]
    xs, ys = xs[order], ys[order]
    feats = _features(xs)
    if len(xs) >= feats.shape[1] + 1:
        coef, *_ = np.linalg.lstsq(feats, ys, rcond=None)
        value = float((_features(target[None, :]) @ coef)[0])
        low, high = ys.min(), ys.max()
        # outside the neighbours' range, trust the fit only up to a factor of the work ratio
        work_ratio = math.prod(target) / math.prod(xs[0])
        bound = max(high, ys[0] * work_ratio) * 2
        if math.isfinite(value) and FLOOR_MS <= value <= bound and value >= low * 0.25:
            return value
    nearest_channels, nearest_ms = xs[0], ys[0]
    return max(FLOOR_MS, float(nearest_ms * math.prod(target) / math.prod(nearest_channels)))


def op_work(op, block: int = 1) -> float:
    """A MAC-like work count of an op: padded channel fields x output positions x kernel area."""
    spatial = op.out_shape[1:] if op.kind not in ("head",) else op.in_shape[1:]
    channels = padded(op.channel_fields, block)
    return float(math.prod(channels) * math.prod(spatial or (1,)) * math.prod(op.kernel or (1,)))


def estimate_from_kind(op, measured: Sequence[tuple[object, float]], block: int = 1) -> float:
    """Estimate from measured ops of a similar kind (any family): nearest in work, scaled by work.

    Args:
        op: The op to estimate (an :class:`OpKey`).
        measured: (OpKey, latency_ms) of measured ops of the same kind (and, preferably, kernel,
            stride and activation).
        block: The runtime's channel block.
    """
    if not measured:
        raise ValueError("cannot estimate from no measured ops")
    work = op_work(op, block)
    best = min(measured, key=lambda m: abs(math.log(op_work(m[0], block) / work)))
    return max(FLOOR_MS, best[1] * work / op_work(best[0], block))
