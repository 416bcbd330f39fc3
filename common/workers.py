"""How many worker processes to start: ``--jobs``, capped at what can run at once.

``--jobs 1000`` on a 2-core machine for 4 tasks must start 2 processes, not 1000 (each would
import torch: threads and memory run out long before any work is done). The cap is the number of
cores and the number of tasks that can be in flight; a count given explicitly and reduced is
said so in one warning line.

Worker processes die with the process that started them (:func:`watch_parent`,
:class:`ParentBound`): killed alone, as the OOM killer does, a parent must not leave its
workers running for minutes, finishing (and wasting) work the resumed run will do again.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def worker_count(jobs: int, n_tasks: int, tasks: str) -> int:
    """Worker processes for ``n_tasks`` parallel tasks.

    Args:
        jobs: The requested count (``run.jobs``): a positive number, or -1 for every core.
        n_tasks: Tasks that can be in flight at once (e.g. the candidates of a generation).
        tasks: What the tasks are, plural, for the warning (e.g. ``"candidates per generation"``).

    Returns:
        ``min(jobs, cores, n_tasks)``, at least 1 (-1 counts as the cores).
    """
    cores = available_cores()
    wanted = cores if jobs < 0 else jobs
    count = max(1, min(wanted, cores, n_tasks))
    if jobs > count:
        warnings.warn(
            f"--jobs {jobs} is more than can run at once: using {count} worker process(es) ({cores} core(s), "
            f"{n_tasks} {tasks})",
            stacklevel=2,
        )
    return count


def watch_parent(parent_pid: int, interval_s: float = 1.0) -> None:
    """In a worker process: exit as soon as the process ``parent_pid`` is gone (a daemon thread polls).

    Also a process-pool initializer (``initializer=watch_parent, initargs=(os.getpid(),)``).
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_WATCHED: set[int] = set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


class ParentBound:
    """A task function for joblib workers that makes its worker exit when the starting process is gone.

    ``Parallel(...)(delayed(ParentBound(fn))(x) for x in xs)``: joblib's ``Parallel`` takes no
    initializer, so the first task a worker runs starts :func:`watch_parent` there (once per
    worker); run in the starting process itself (``n_jobs=1``) it does nothing extra.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.parent_pid = os.getpid()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Watch the parent (in a worker), then run the task."""
        if os.getpid() != self.parent_pid and self.parent_pid not in _WATCHED:
            _WATCHED.add(self.parent_pid)
            if os.getppid() == self.parent_pid:
                watch_parent(self.parent_pid)
            elif not _alive(self.parent_pid):  # the parent died before this worker's first task
                os._exit(1)
            # else: a worker of another kind (dask, ray, forkserver) whose parent is not the starting process
        return self.fn(*args, **kwargs)
