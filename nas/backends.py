"""Where evaluations run: in this process, in loky worker processes, or on a dask cluster.

Each backend submits :func:`run_task` calls and reports finished ones; :mod:`nas.evaluation`
drives them (windowing, retries, journaling). A task returns a plain dict and never raises for
a failing ``evaluate``; only infrastructure failures surface, as :class:`WorkerLost`.

* ``inline``: sequential, in the search process (no isolation: a crash in ``evaluate`` kills
  the search; for debugging and tests). Global RNG states are restored around each call.
* ``loky`` (default): ``jobs`` worker processes from joblib's loky, each limited to
  ``threads_per_worker`` threads (default ``cpus // jobs``) through the usual OpenMP/MKL/BLAS
  variables, so torch in ``jobs`` workers does not oversubscribe the cores. A dying worker breaks
  the whole pool: every in-flight task reports :class:`WorkerLost` with ``attributable=False``.
* ``dask``: a ``dask.distributed.Client`` on ``scheduler``; all tasks are submitted at once and
  the scheduler places them. Dask reschedules tasks of a dead worker by itself and raises
  ``KilledWorker`` for a task that kept killing workers (``distributed.scheduler.allowed-failures``,
  default 3): reported as attributable and final, i.e. recorded failed without further retries.
  Start workers without ``MALLOC_TRIM_THRESHOLD_`` (see :func:`recommended_dask_config`).
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import datetime
import os
import socket
import time
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from common.errors import UserError
from common.workers import watch_parent
from nas.config import SearchConfig
from nas.problem import SearchProblem
from nas.records import ProblemContractError, split_outputs
from nas.rng import preserved_global_rng

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


DASK_POLL_S = 0.2  # how often a dask wait with a deadline looks for finished tasks


class WorkerLost(Exception):
    """The process running a task died before returning.

    Attributes:
        attributable: True when the task itself is known to be the cause (it ran alone, or dask
            said so); False when it merely shared a pool with a task that crashed.
        final: True when the backend already retried it (dask's ``allowed-failures``): no more attempts.
    """

    def __init__(self, message: str, attributable: bool, final: bool = False) -> None:
        """Store the message, whether the lost task is to blame, and whether retrying is pointless."""
        super().__init__(message)
        self.attributable = attributable
        self.final = final


def run_task(problem: SearchProblem, genome: list[int], protect_rng: bool = False) -> dict[str, Any]:
    """Evaluate one candidate; the function every backend runs. Never raises for a failing evaluate.

    Args:
        problem: The problem (a pickled copy in workers).
        genome: The canonical genome.
        protect_rng: Restore the global python/numpy/torch RNG states afterwards (in-process runs).

    Returns:
        ``{"ok": True, "metrics", "info", "wall_s", "host", "pid"}``, or ``{"ok": False, "error",
        "kind"}`` where kind is ``error`` (retried), ``user_error`` or ``contract`` (stop the search).
    """
    start = time.perf_counter()
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        with preserved_global_rng() if protect_rng else contextlib.nullcontext():
            outputs = problem.evaluate(list(genome))
        metrics, info = split_outputs(outputs)
    except UserError as exc:
        return {"ok": False, "kind": "user_error", "error": str(exc), **where}
    except ProblemContractError as exc:
        return {"ok": False, "kind": "contract", "error": str(exc), **where}
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        return {"ok": False, "kind": "error", "error": text, "traceback": traceback.format_exc(limit=8), **where}
    return {"ok": True, "metrics": metrics, "info": info, "wall_s": time.perf_counter() - start, **where}


def utc_now() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Backend(abc.ABC):
    """Submits tasks and reports finished ones."""

    name: str = ""
    window: int = 1  # most tasks in flight at once

    @property
    def parallelism(self) -> int:
        """How many tasks run at the same time (for time estimates): the window, unless the backend knows better."""
        return self.window

    @abc.abstractmethod
    def submit(self, problem: SearchProblem, genome: list[int]) -> Any:
        """Start one :func:`run_task`; returns a handle."""

    @abc.abstractmethod
    def wait_any(self, handles: Sequence[Any], timeout_s: float | None = None) -> list[Any]:
        """Block until at least one handle is finished (or ``timeout_s`` passed: then maybe none); the finished ones."""

    @abc.abstractmethod
    def outcome(self, handle: Any, alone: bool) -> dict[str, Any]:
        """The task's result dict; raises :class:`WorkerLost` if its process died.

        Args:
            handle: From :meth:`submit`.
            alone: Whether no other task was in flight while it ran.
        """

    def close(self, abort: bool = False) -> None:  # noqa: B027 - optional hook
        """Release resources; ``abort`` after an error or interrupt (stop workers)."""


class _Finished:
    """Handle of a task that already ran (hashable, unlike its result dict)."""

    __slots__ = ("result",)

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result


class InlineBackend(Backend):
    """Runs each task immediately in this process."""

    name = "inline"

    def submit(self, problem: SearchProblem, genome: list[int]) -> Any:
        """Run the task now; the handle holds its result."""
        return _Finished(run_task(problem, genome, protect_rng=True))

    def wait_any(self, handles: Sequence[Any], timeout_s: float | None = None) -> list[Any]:
        """Every handle is already finished."""
        return list(handles)

    def outcome(self, handle: Any, alone: bool) -> dict[str, Any]:
        """The result computed at submission."""
        return handle.result


class LokyBackend(Backend):
    """``jobs`` loky worker processes with capped threads, in a pool private to this search.

    Not joblib's global reusable executor: joblib's ``Parallel`` (feature extraction, baseline
    runs) keeps its own state in that global slot and breaks when another user has created or
    broken the executor there.
    """

    name = "loky"

    def __init__(self, jobs: int, threads_per_worker: int | None) -> None:
        """Prepare the pool settings; workers start on the first submission."""
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // jobs)
        self.window = jobs
        self.env = {var: str(threads) for var in THREAD_VARS}
        self.env["ENABLE_IPC"] = "1"
        self.pool: Any = None

    def _executor(self) -> Any:
        from joblib.externals.loky import ProcessPoolExecutor

        # loky replaces a worker whose memory grew by more than 300 MB over its tasks (its leak
        # guard; PyTorch's allocator grows that much training larger candidates), and warns when
        # jobs were queued at that moment. The worker exits only after returning its result, so
        # nothing is lost; the warning would only alarm users in every longer search.
        warnings.filterwarnings(
            "ignore",
            message="A worker stopped while some jobs were given to the executor",
            category=UserWarning,
            module=r"joblib\.externals\.loky\.process_executor",
        )

        broken = self.pool is not None and getattr(getattr(self.pool, "_flags", None), "broken", None)
        if broken:
            self.pool.shutdown(wait=False, kill_workers=True)
        if self.pool is None or broken:
            self.pool = ProcessPoolExecutor(
                max_workers=self.window, timeout=300, env=self.env, initializer=watch_parent, initargs=(os.getpid(),)
            )
        return self.pool

    def submit(self, problem: SearchProblem, genome: list[int]) -> Any:
        """Queue the task on the pool (a broken pool is replaced by a fresh one)."""
        return self._executor().submit(run_task, problem, genome)

    def wait_any(self, handles: Sequence[Any], timeout_s: float | None = None) -> list[Any]:
        """Wait for the first finished future (at most ``timeout_s``)."""
        done, _ = concurrent.futures.wait(handles, timeout=timeout_s, return_when=concurrent.futures.FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def outcome(self, handle: Any, alone: bool) -> dict[str, Any]:
        """The result, or :class:`WorkerLost` if the pool broke."""
        try:
            return handle.result()
        except concurrent.futures.BrokenExecutor as exc:
            raise WorkerLost(f"loky worker died ({type(exc).__name__}: {exc})", attributable=alone) from None

    def close(self, abort: bool = False) -> None:
        """Stop the workers: at once on abort (an interrupted run must not leave training behind), else cleanly."""
        if self.pool is not None:
            self.pool.shutdown(wait=not abort, kill_workers=abort)
            self.pool = None


class DaskBackend(Backend):
    """Tasks on a ``dask.distributed`` cluster."""

    name = "dask"

    def __init__(self, address: str, timeout_s: float) -> None:
        """Connect to the scheduler.

        Raises:
            UserError: dask is not installed, or the scheduler cannot be reached.
        """
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise UserError('backend "dask" needs dask.distributed: pip install "dask[distributed]"') from None
        self.address = check_scheduler_address(address)
        try:
            self.client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(
                f"cannot reach the dask scheduler at {address} within {timeout_s:g} s ({type(exc).__name__}: {exc}); "
                "check the address and that `dask scheduler` is running"
            ) from None
        self.window = 1 << 30
        self.finished = as_completed(loop=self.client.loop)
        self.threads = max(1, sum(self.client.nthreads().values()))  # the cluster's task slots when we connected
        _warn_malloc_trim(self.client)

    @property
    def parallelism(self) -> int:
        """The cluster's worker threads when the search connected (all tasks are submitted at once)."""
        return self.threads

    def submit(self, problem: SearchProblem, genome: list[int]) -> Any:
        """Submit the task (``pure=False``: never deduplicated by dask)."""
        future = self.client.submit(run_task, problem, genome, pure=False)
        self.finished.add(future)
        return future

    def wait_any(self, handles: Sequence[Any], timeout_s: float | None = None) -> list[Any]:
        """Wait for the first finished future (all in flight are in ``finished``), at most ``timeout_s``."""
        if timeout_s is None:
            return [next(self.finished), *self.finished.next_batch(block=False)]
        end = time.monotonic() + timeout_s
        while True:  # as_completed has no timeout: poll it
            done = self.finished.next_batch(block=False)
            if done or time.monotonic() >= end:
                return done
            time.sleep(min(DASK_POLL_S, max(0.0, end - time.monotonic())))

    def outcome(self, handle: Any, alone: bool) -> dict[str, Any]:
        """The result, :class:`WorkerLost` for ``KilledWorker``; other errors mean the cluster is gone."""
        from distributed import KilledWorker

        try:
            return handle.result()
        except KilledWorker as exc:
            first = str(exc).split(". ")[0]
            raise WorkerLost(f"dask worker(s) died running it ({first})", attributable=True, final=True) from None
        except Exception as exc:
            raise UserError(
                f"lost the dask cluster at {self.address} ({type(exc).__name__}: {exc}); finished evaluations are "
                "journaled: restart the cluster and resume"
            ) from None

    def close(self, abort: bool = False) -> None:
        """Disconnect from the scheduler (the cluster keeps running; tasks already running finish there)."""
        self.client.close()


def check_scheduler_address(address: str) -> str:
    """Refuse a ``--scheduler`` value that is not a dask address, before a ``Client`` is made for it.

    ``distributed.Client`` raises for a malformed address, but the half-made client then prints a
    traceback of its own from its finaliser (and waits 20 s for it); parsing first avoids both.

    Returns:
        ``address``, unchanged.

    Raises:
        UserError: dask is not installed, the scheme is unknown, or a ``tcp``/``tls``/``ws(s)``
            address lacks a host or a port in 1..65535.
    """
    try:
        from distributed.comm import get_address_host_port, parse_address
        from distributed.comm.registry import get_backend
    except ImportError:
        raise UserError('backend "dask" needs dask.distributed: pip install "dask[distributed]"') from None
    expected = "expected SCHEME://HOST:PORT, e.g. tcp://10.0.0.5:8786 (the address `dask scheduler` prints)"
    try:
        scheme, _ = parse_address(address)
        get_backend(scheme)  # an unknown scheme raises, naming the known ones
        if scheme in ("tcp", "tls", "ws", "wss"):
            host, port = get_address_host_port(address)
            if not host or not 0 < int(port) < 65536:
                raise ValueError(f"host '{host}', port {port}")
    except (ValueError, TypeError) as exc:
        raise UserError(f"--scheduler {address!r} is not a dask scheduler address ({exc}); {expected}") from None
    return address


def _warn_malloc_trim(client: Any) -> None:
    import logging

    try:
        found = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    except Exception:  # an informational check must never stop a search
        return
    if any(value is not None for value in found.values()):
        logging.getLogger(__name__).warning(
            "dask workers at %s run with MALLOC_TRIM_THRESHOLD_ set (dask's default), which made torch training "
            "2-3x slower in our measurements; start the workers with nas.backends.recommended_dask_config()",
            client.scheduler.address,
        )


def recommended_dask_config() -> dict[str, Any]:
    """``dask.config.set`` settings for workers that run training: no malloc trim override, no profiler.

    Example:
        ``with dask.config.set(recommended_dask_config()): LocalCluster(...)``, or the same keys in
        the workers' dask YAML config.
    """
    return {
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
        "distributed.worker.profile.enabled": False,
    }


def make_backend(config: SearchConfig) -> Backend:
    """The backend named by ``config.backend``.

    loky gets at most ``population`` workers: no more candidates than that are ever in flight (one
    generation at a time), and every further process would only hold memory.
    """
    if config.backend == "inline":
        return InlineBackend()
    if config.backend == "loky":
        return LokyBackend(min(config.jobs, config.population), config.threads_per_worker)
    return DaskBackend(str(config.scheduler), config.connect_timeout_s)
