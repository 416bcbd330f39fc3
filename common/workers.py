"""How many worker processes to start: ``--jobs``, capped at what can run at once.

``--jobs 1000`` on a 2-core machine for 4 tasks must start 2 processes, not 1000 (each would
import torch: threads and memory run out long before any work is done). The cap is the number of
cores and the number of tasks that can be in flight; a count given explicitly and reduced is
said so in one warning line.
"""

from __future__ import annotations

import os
import warnings


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
