"""Estimating an op the table lacks from measured ops of the same family (same op, other channels).

Within a family (see :attr:`OpKey.family`) an op's cost is a smooth function of its channel
counts, with steps where the runtime pads channels to its vector block (the table records that
block; 16 with AVX-512). The estimate is a local linear model in the *padded* channel counts and
their products (a conv's work is ``cin * cout``), fitted by least squares on the nearest measured
family members (distance in log2 channels). With too few members for that, it scales the nearest
member by the ratio of padded channel products. Padding took a table with a quarter of its ops
measured from 82 % to 91 % of random specs within +-10 % (benchmarks/bench_latency.py).

Only channels the runtime blocks are padded (:attr:`OpKey.blocked_fields`): a head's class count
and hidden width feed plain ``Gemm`` nodes and stay as they are.

When the whole family is unmeasured (a collection cut short by its time budget), the estimate
scales the most similar measured op of the same kind, kernel, stride and activation (nearest in
work) by the ratio of work: channels x output positions x kernel area, a MAC count.

A head for another number of classes than the table's (:func:`adjust_head_classes`) is the
measured head on the same input with the same hidden width, plus or minus the classifier's extra
multiply-accumulates at the table's measured cost per head ``Gemm`` MAC
(:func:`head_mac_cost_ms`). Not a MAC *ratio*: a head's time is mostly its global pooling and
fixed per-node cost, which do not grow with the classes. Twelve heads of the shipped table
re-measured on its machine at 6 and 50 classes: error of the estimated change as a share of the
head's time, median 3 % (max 30 %, timing noise of a few hundred ns), against 26 % (max 400 %)
for a MAC ratio and 47 % (max 480 %) for interpolating the class count like a padded channel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from latency_tables.keys import OpKey

NEIGHBOURS = 8  # family members used for the local fit
FLOOR_MS = 1e-4  # no estimate goes below 0.1 us


def padded(channels: Sequence[int], block: int, blocked: Sequence[bool] | None = None) -> tuple[int, ...]:
    """Channel counts rounded up to the runtime's channel block (counts of 1 stay 1).

    Args:
        channels: Channel counts.
        block: The runtime's channel block (1: no padding).
        blocked: Per count, whether the runtime pads it (default: all); the others stay as they are.
    """
    flags = (True,) * len(channels) if blocked is None else tuple(blocked)
    return tuple(
        c if c <= 1 or block <= 1 or not pad else -(-c // block) * block for c, pad in zip(channels, flags, strict=True)
    )


def _features(channels: np.ndarray) -> np.ndarray:
    """[1, c_i..., c_i * c_j...] per row: affine in each count, bilinear across counts."""
    cols = [np.ones(len(channels)), *channels.T]
    d = channels.shape[1]
    cols += [channels[:, i] * channels[:, j] for i in range(d) for j in range(i + 1, d)]
    return np.stack(cols, axis=1)


def estimate_from_family(
    channels: Sequence[int],
    members: Sequence[tuple[tuple[int, ...], float]],
    block: int = 1,
    blocked: Sequence[bool] | None = None,
) -> float:
    """Estimated latency (ms) of an op with ``channels`` from measured ``members`` of its family.

    Args:
        channels: The op's channel fields (:attr:`OpKey.channel_fields`).
        members: (channel fields, latency_ms) of measured ops of the same family; not empty.
        block: The runtime's channel block (see :func:`latency_tables.layout.channel_block_size`).
        blocked: Which channel fields the runtime pads to ``block`` (:attr:`OpKey.blocked_fields`;
            default: all).

    Returns:
        The estimate, at least :data:`FLOOR_MS`.
    """
    if not members:
        raise ValueError("cannot interpolate from an empty family")
    target = np.asarray(padded(channels, block, blocked), dtype=float)
    xs = np.array([padded(m[0], block, blocked) for m in members], dtype=float)
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


def op_work(op: OpKey, block: int = 1) -> float:
    """A MAC-like work count of an op: (blocked fields padded) channel fields x output positions x kernel area."""
    spatial = op.out_shape[1:] if op.kind not in ("head",) else op.in_shape[1:]
    channels = padded(op.channel_fields, block, op.blocked_fields)
    return float(math.prod(channels) * math.prod(spatial or (1,)) * math.prod(op.kernel or (1,)))


class WorkIndex:
    """Measured ops of one kind group, indexed by log work, for :meth:`estimate` (built once per group).

    A table that lacks many ops (a partial collection) estimates thousands of them from the same
    group; the index computes each measured op's work once instead of once per estimate.
    """

    def __init__(self, measured: Sequence[tuple[OpKey, float]], block: int = 1) -> None:
        """Index ``measured`` ((OpKey, latency_ms) pairs) for the runtime's channel ``block``.

        Raises:
            ValueError: ``measured`` is empty.
        """
        if not measured:
            raise ValueError("cannot estimate from no measured ops")
        self.block = block
        self.latency_ms = np.array([ms for _, ms in measured], dtype=float)
        self.work = np.array([op_work(op, block) for op, _ in measured], dtype=float)
        self.log_work = np.log(self.work)

    def estimate(self, op: OpKey) -> float:
        """The nearest measured op in log work (the first on ties), scaled by the work ratio."""
        work = op_work(op, self.block)
        best = int(np.argmin(np.abs(self.log_work - math.log(work))))
        return max(FLOOR_MS, float(self.latency_ms[best] * work / self.work[best]))


def estimate_from_kind(op: OpKey, measured: Sequence[tuple[OpKey, float]], block: int = 1) -> float:
    """Estimate from measured ops of a similar kind (any family): nearest in work, scaled by work.

    Args:
        op: The op to estimate (an :class:`OpKey`).
        measured: (OpKey, latency_ms) of measured ops of the same kind (and, preferably, kernel,
            stride and activation).
        block: The runtime's channel block.

    Raises:
        ValueError: ``measured`` is empty.
    """
    return WorkIndex(measured, block).estimate(op)


def classifier_fan_in(head: OpKey) -> int:
    """Inputs of a head's classifier ``Gemm``: its hidden width, or its input channels without one."""
    return head.hidden or head.in_shape[0]


def head_gemm_macs(head: OpKey) -> int:
    """Multiply-accumulates of a head's ``Gemm`` nodes (hidden layer, classifier) at batch 1."""
    cin, hidden, n_classes = head.in_shape[0], head.hidden, head.out_channels
    return cin * hidden + hidden * n_classes if hidden else cin * n_classes


def head_mac_cost_ms(measured: Sequence[tuple[OpKey, float]]) -> float | None:
    """The table's cost of one head ``Gemm`` multiply-accumulate (ms), from heads that differ only in MACs.

    Measured heads on the same input that differ only in hidden width (or only in class count)
    differ only in their ``Gemm`` work: the same pooling, the same nodes. Per such group, the
    least-squares slope of latency against Gemm MACs; the estimate is the median over groups
    (single slopes are noisy: a few us heads, differences of fractions of a us), never negative.

    Args:
        measured: (head OpKey, latency_ms) of the table's measured heads.

    Returns:
        ms per MAC, or None when no group has two different MAC counts.
    """
    groups: dict[tuple, dict[int, list[float]]] = {}
    for op, ms in measured:
        if op.hidden:  # hidden widths vary at a fixed class count (a head without one has another graph)
            groups.setdefault(("h", op.in_shape, op.out_channels), {}).setdefault(head_gemm_macs(op), []).append(ms)
        groups.setdefault(("c", op.in_shape, op.hidden), {}).setdefault(head_gemm_macs(op), []).append(ms)
    slopes = []
    for points in groups.values():
        if len(points) < 2:
            continue
        macs = np.array(sorted(points), dtype=float)
        ms = np.array([float(np.mean(points[m])) for m in sorted(points)])
        slopes.append(float(np.polyfit(macs, ms, 1)[0]))
    return max(0.0, float(np.median(slopes))) if slopes else None


def adjust_head_classes(base: OpKey, base_ms: float, n_classes: int, mac_cost_ms: float | None) -> float:
    """Latency (ms) of ``base`` (a head) with ``n_classes`` classes instead of its own.

    The classifier is a ``Gemm`` of ``fan_in x n_classes`` MACs and nothing else in the head
    depends on the class count, so the cost is linear in the class count: the base head's time
    plus the classifier's extra (or fewer) MACs at ``mac_cost_ms``. Without a measured MAC cost
    (a table with no two heads that differ only in MACs), the base head's own average cost per
    unit of work (pooled elements + Gemm MACs), an upper bound on the marginal cost.

    Args:
        base: A head OpKey with a known latency.
        base_ms: Its latency.
        n_classes: The class count wanted.
        mac_cost_ms: :func:`head_mac_cost_ms` of the table (None: unknown).
    """
    if mac_cost_ms is None:
        mac_cost_ms = base_ms / (math.prod(base.in_shape) + head_gemm_macs(base))
    delta_macs = (n_classes - base.out_channels) * classifier_fan_in(base)
    return max(FLOOR_MS, base_ms + delta_macs * mac_cost_ms)
