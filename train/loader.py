"""Mini-batches of one split of the cached features, on the training device.

A split that fits in ``max_mb`` is normalised once into a single tensor on the device (the GPU
when training on CUDA), and batches are index views of it: no per-step host work, no host to
device copies. A larger split is streamed from the feature memmap through
:meth:`train.feature_set.Features.batch`, one batch read ahead in a thread, via pinned memory
and non-blocking copies on CUDA. Audio is never decoded here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from train.augment_cache import AugmentedCopies
from train.feature_set import Features

_LOAD_CHUNK_ROWS = 4096  # rows normalised at a time while loading a split into memory


class SplitData:
    """The rows of one split as device batches of normalised features and labels.

    Args:
        features: The cached features.
        rows: Row indices into ``features`` (e.g. ``features.splits.val``).
        device: Where batches are delivered.
        max_mb: Largest split size, in MiB of float32 features, that is held in memory.
    """

    def __init__(self, features: Features, rows: np.ndarray, device: torch.device, max_mb: float) -> None:
        self.features = features
        self.rows = np.asarray(rows, dtype=np.int64)
        self.device = device
        self.y = torch.from_numpy(np.asarray(features.y[self.rows], dtype=np.int64)).to(device)
        n_bytes = len(self.rows) * int(np.prod(features.x.shape[1:])) * 4
        self.x = _load(features, self.rows, device) if n_bytes <= max_mb * 2**20 else None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def in_memory(self) -> bool:
        """Whether the split is held as one tensor (otherwise it is streamed)."""
        return self.x is not None

    def batches(self, batch_size: int, order: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches of shape (b, 1, n_bins, n_frames) and (b,) on the device.

        Args:
            batch_size: Examples per batch; the last batch may be smaller.
            order: Positions into this split's rows, in the order to visit them (e.g. a shuffled
                subset); None visits every row in order.
        """
        if self.x is not None:
            yield from self._memory_batches(batch_size, order)
        else:
            yield from self._streamed_batches(batch_size, order)

    def _memory_batches(self, batch_size: int, order: np.ndarray | None):
        assert self.x is not None
        if order is None:
            for start in range(0, len(self), batch_size):
                yield self.x[start : start + batch_size], self.y[start : start + batch_size]
            return
        index = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)
        for start in range(0, len(index), batch_size):
            part = index[start : start + batch_size]
            yield self.x[part], self.y[part]

    def _streamed_batches(self, batch_size: int, order: np.ndarray | None):
        positions = np.arange(len(self)) if order is None else np.asarray(order, dtype=np.int64)
        starts = range(0, len(positions), batch_size)
        if not starts:
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._read, positions[:batch_size])
            for start in starts:
                x, pos = pending.result()
                nxt = start + batch_size
                if nxt < len(positions):
                    pending = pool.submit(self._read, positions[nxt : nxt + batch_size])
                yield _to_device(x, self.device), self.y[torch.from_numpy(pos).to(self.device)]

    def _read(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, _ = self.features.batch(self.rows[positions])
        return x, positions


class AugmentedSplitData(SplitData):
    """Training rows that each come, per visit, clean or as one of their cached augmented copies.

    Positions ``0 .. len - 1`` are the clean rows; position ``p + v * len`` (``v = 1 .. copies``)
    is copy ``v - 1`` of the clip at position ``p``. A trainer draws one version per clip and epoch
    and passes those positions as ``order`` to :meth:`batches`. Held in memory (clean and copies in
    one tensor) when it fits in ``max_mb``, else streamed from both memmaps.
    """

    def __init__(
        self, features: Features, rows: np.ndarray, copies: AugmentedCopies, device: torch.device, max_mb: float
    ) -> None:  # fmt: skip
        super().__init__(features, rows, device, max_mb=0)  # the clean rows and labels, streamed until loaded below
        self.versions = copies.copies + 1
        n_copies = copies.copies
        self.copy_view = dataclasses.replace(features, x=copies.x, y=np.repeat(features.y, n_copies))
        self.copy_rows = np.concatenate([copies.rows(self.rows, np.full(len(self.rows), k)) for k in range(n_copies)])
        self.y = self.y.repeat(self.versions)
        n_bytes = len(self.rows) * self.versions * int(np.prod(features.x.shape[1:])) * 4
        if n_bytes <= max_mb * 2**20:
            self.x = torch.cat([_load(features, self.rows, device), _load(self.copy_view, self.copy_rows, device)])

    def _read(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.rows)
        clean = positions < n
        x = np.empty((len(positions), *self.features.input_shape), dtype=np.float32)
        if clean.any():
            x[clean] = self.features.batch(self.rows[positions[clean]])[0]
        if not clean.all():
            x[~clean] = self.copy_view.batch(self.copy_rows[positions[~clean] - n])[0]
        return x, positions


def _to_device(x: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(x)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _load(features: Features, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Normalise ``rows`` into one float32 tensor on ``device``, a chunk at a time."""
    out = torch.empty((len(rows), *features.input_shape), dtype=torch.float32, device=device)
    for start in range(0, len(rows), _LOAD_CHUNK_ROWS):
        x, _ = features.batch(rows[start : start + _LOAD_CHUNK_ROWS])
        out[start : start + len(x)] = torch.from_numpy(x)  # a synchronous copy: x is freed next
    return out
