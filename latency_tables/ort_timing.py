"""Timing ONNX models in ONNX Runtime with measurement hygiene.

One *session measurement* = a fresh ``InferenceSession`` (fixed intra-/inter-op threads),
``warmup`` untimed runs, then ``runs`` timed runs of ``session.run``; its median and p90 in ms.
On a shared or frequency-scaling machine one session's median is not reproducible (on a shared
VM, two single-session medians of the same model agreed within +-10 % for only 36-68 % of small
CNNs, and whole passes drifted by 16 %), so :func:`time_model` repeats the session measurement
``sessions`` times and reports the minimum of the per-session medians (the least-disturbed
session), alongside the median of medians and the p90 of the best session.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

MAX_THREADS = 256  # more intra-op threads than any device this tool measures has cores
OPT_LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


@dataclass(frozen=True)
class TimingConfig:
    """How each latency is measured.

    The number of timed runs adapts to the model: enough runs to fill ``target_ms`` of timed
    work, but never fewer than ``min_runs`` nor more than ``runs``; warm-up is a fifth of that
    (at least 1, at most ``warmup``). A 20 us op thus gets 50 timed runs, a 50 ms model 5.
    """

    threads: int = 1  # ORT intra-op threads (inter-op is always 1, sequential execution)
    warmup: int = 10  # most untimed runs per session
    runs: int = 50  # most timed runs per session
    min_runs: int = 5  # fewest timed runs per session
    target_ms: float = 25.0  # timed work per session that sets the number of runs
    sessions: int = 3  # fresh sessions per measurement; the minimum of their medians is reported

    def __post_init__(self) -> None:
        for name in ("threads", "runs", "sessions", "min_runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"latency.{name} must be >= 1, got {getattr(self, name)}")
        if self.threads > MAX_THREADS:
            raise ValueError(f"latency.threads (--threads) must be in 1..{MAX_THREADS}, got {self.threads}")
        if self.warmup < 0:
            raise ValueError(f"latency.warmup must be >= 0, got {self.warmup}")
        if self.min_runs > self.runs:
            raise ValueError(f"latency.min_runs ({self.min_runs}) must not exceed latency.runs ({self.runs})")
        if self.target_ms <= 0:
            raise ValueError(f"latency.target_ms must be > 0, got {self.target_ms}")

    def end_to_end(self) -> TimingConfig:
        """These settings for whole models: at least 50 timed runs per fresh session.

        Whole models are measured as nn-Meter and HW-NAS-Bench do; table ops adapt their runs to
        their cost instead (:meth:`plan`).
        """
        return dataclasses.replace(self, runs=max(self.runs, 50), min_runs=max(self.min_runs, 50))

    def plan(self, estimate_ms: float) -> tuple[int, int]:
        """(warm-up runs, timed runs) for a model that takes about ``estimate_ms`` per run."""
        runs = int(min(self.runs, max(self.min_runs, round(self.target_ms / max(estimate_ms, 1e-4)))))
        return min(self.warmup, max(1, runs // 5)), runs


@dataclass(frozen=True)
class Timing:
    """Result of timing one model.

    Attributes:
        latency_ms: Minimum over sessions of the per-session median (the reported latency).
        median_ms: Median over sessions of the per-session medians.
        p90_ms: 90th percentile of the run times in the session that gave ``latency_ms``.
        session_medians_ms: Every session's median, in order.
    """

    latency_ms: float
    median_ms: float
    p90_ms: float
    session_medians_ms: tuple[float, ...]


def session_options(threads: int, optimization: str = "all") -> ort.SessionOptions:
    """Session options with fixed threads, sequential execution and the given graph optimisation."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = OPT_LEVELS[optimization]
    so.log_severity_level = 3
    return so


def make_session(model: bytes | str, threads: int, optimization: str = "all") -> ort.InferenceSession:
    """A CPU inference session for a serialised model (bytes) or a model path."""
    return ort.InferenceSession(model, session_options(threads, optimization), providers=["CPUExecutionProvider"])


_INTEGER_INPUTS = {"tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


def random_feeds(session: ort.InferenceSession, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs matching the session's (static) input shapes: float32, or 8-bit integers (INT8 op graphs)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        integer = _INTEGER_INPUTS.get(inp.type)
        if integer is not None:
            info = np.iinfo(integer)
            feeds[inp.name] = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(integer)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def time_session(session: ort.InferenceSession, feeds: dict[str, np.ndarray], warmup: int, runs: int) -> np.ndarray:
    """Run times in ms of ``runs`` timed ``session.run`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        session.run(None, feeds)
    times = np.empty(runs)
    clock = time.perf_counter_ns
    for i in range(runs):
        start = clock()
        session.run(None, feeds)
        times[i] = clock() - start
    return times / 1e6


def time_model(model: bytes | str, cfg: TimingConfig, optimization: str = "all") -> Timing:
    """Time a model over ``cfg.sessions`` fresh sessions (see module docstring for the statistic).

    In each session one untimed run estimates the cost, which sets the warm-up and timed runs
    (:meth:`TimingConfig.plan`).
    """
    medians, p90s = [], []
    for s in range(cfg.sessions):
        session = make_session(model, cfg.threads, optimization)
        feeds = random_feeds(session, seed=s)
        estimate = float(time_session(session, feeds, 0, 1)[0])
        warmup, runs = cfg.plan(estimate)
        times = time_session(session, feeds, warmup, runs)
        medians.append(float(np.median(times)))
        p90s.append(float(np.percentile(times, 90)))
        del session
    best = int(np.argmin(medians))
    return Timing(medians[best], float(np.median(medians)), p90s[best], tuple(medians))
