"""A toy analytic problem shaped like the audio search, for tests, demos and benchmarks of the loop.

The genome resembles the real space: gene 0 is a "depth" (0..3) that switches tail genes on,
gene 1 is a fine-grained "width" (0..31), the tail genes have small mixed bounds; genes of
inactive blocks are zeroed by :meth:`ToyProblem.canonical`, so several genomes share a key.
Objectives come from ZDT1 (Zitzler, Deb, Thiele 2000) on ``x = gene / bound``:
``latency_ms = 1 + 99 * x1`` (min), ``accuracy = 1 - f2 / 10`` (max) with
``f2 = g * (1 - sqrt(x1 / g))``, ``g = 1 + 9 * mean(tail)``; optionally ``size_kb`` (min) as a
third objective. ``size_kb`` is also what :meth:`ToyProblem.precheck` returns.

Knobs for tests: a per-evaluation sleep, a file logging every ``evaluate`` call, candidates whose
first evaluation kills its process (``os._exit``), candidates that always raise.

Run a demo: ``python -m nas.toy runs/toy --generations 30`` (``--resume`` to continue).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.hashing import seed_from_string
from nas.config import SearchConfig
from nas.problem import Constraint, ObjectiveSpec, SearchProblem

TAIL_BOUNDS = (7, 5, 3, 7, 5, 3, 7, 5, 3, 7)


class ToyProblem(SearchProblem):
    """ZDT1 on an integer genome with depth-gated genes (see the module docstring)."""

    def __init__(
        self,
        n_tail: int = 10,
        three_objectives: bool = False,
        max_size_kb: float | None = None,
        min_accuracy: float | None = None,
        sleep_s: float = 0.0,
        state_dir: str | None = None,
        crash_mod: int | None = None,
        crash_always: bool = False,
        fail_mod: int | None = None,
        low_fidelity: bool = False,
    ) -> None:
        """Build the problem.

        Args:
            n_tail: Number of tail genes (genes after depth and width).
            three_objectives: Add ``size_kb`` (min) as an objective.
            max_size_kb: Constraint ``size_kb <= max_size_kb`` (checked by precheck).
            min_accuracy: Constraint ``accuracy >= min_accuracy`` (known only after evaluate).
            sleep_s: Sleep in every ``evaluate`` call.
            state_dir: Folder for ``calls.txt`` (one ``pid key`` line per call) and crash markers.
            crash_mod: Candidates with ``seed_from_string(key) % crash_mod == 0`` kill their process
                (``os._exit``) on their first evaluation (every evaluation with ``crash_always``).
            crash_always: See ``crash_mod``.
            fail_mod: Candidates with ``(seed_from_string(key) >> 8) % fail_mod == 0`` raise ``RuntimeError``
                (``fail_mod=1``: all of them).
            low_fidelity: Offer one lower fidelity (multi-fidelity search): :meth:`evaluate_low` gives the
                accuracy 0.1 to 0.2 lower, by an amount drawn from the key (a noisy, biased early estimate),
                in a quarter of ``sleep_s``; its calls are logged as ``key@r0``.
        """
        self.tail_bounds = [TAIL_BOUNDS[i % len(TAIL_BOUNDS)] for i in range(n_tail)]
        self.gene_bounds = [3, 31, *self.tail_bounds]
        self.objectives = [
            ObjectiveSpec("accuracy", "max", best=1.0, worst=0.0),
            ObjectiveSpec("latency_ms", "min", best=1.0, worst=100.0),
        ]
        if three_objectives:
            self.objectives.append(ObjectiveSpec("size_kb", "min", best=16.0, worst=400.0))
        self.constraints = []
        if max_size_kb is not None:
            self.constraints.append(Constraint.at_most("size_kb", max_size_kb))
        if min_accuracy is not None:
            self.constraints.append(Constraint.at_least("accuracy", min_accuracy))
        self.sleep_s, self.state_dir = sleep_s, state_dir
        self.crash_mod, self.crash_always, self.fail_mod = crash_mod, crash_always, fail_mod
        self.fidelities = ("noisy estimate",) if low_fidelity else ()

    def canonical(self, genome: Sequence[int]) -> list[int]:
        """Zero the tail genes that the depth gene leaves inactive."""
        genome = [int(g) for g in genome]
        active = math.ceil(len(self.tail_bounds) * (genome[0] + 1) / 4)
        return genome[: 2 + active] + [0] * (len(self.tail_bounds) - active)

    def precheck(self, genome: list[int]) -> Mapping[str, float]:
        """The cheap metric: ``size_kb``."""
        return {"size_kb": 16.0 + 4.0 * sum(genome[2:]) + 8.0 * genome[0]}

    def evaluate(self, genome: list[int]) -> Mapping[str, Any]:
        """ZDT1 objectives; draws from the global RNGs on purpose (the search must not notice)."""
        key = self.key(genome)
        self._log_call(key)
        self._maybe_break(key)
        random.random()
        np.random.random()
        if self.sleep_s:
            time.sleep(self.sleep_s)
        x1 = genome[1] / self.gene_bounds[1]
        tail = [g / b for g, b in zip(genome[2:], self.tail_bounds, strict=True)]
        g = 1.0 + 9.0 * sum(tail) / len(tail)
        f2 = g * (1.0 - math.sqrt(x1 / g))
        out = {"accuracy": 1.0 - f2 / 10.0, "latency_ms": 1.0 + 99.0 * x1, "seed": seed_from_string(key)}
        return {**out, **self.precheck(genome), "source": "toy"}

    def evaluate_low(self, genome: list[int], rung: int) -> Mapping[str, Any]:
        """The objectives with the accuracy lowered by 0.1 to 0.2 (drawn from the key): a cheap, noisy estimate."""
        key = self.key(genome)
        saved, self.state_dir, self.sleep_s = (self.state_dir, self.sleep_s), None, 0.0
        try:
            out = dict(self.evaluate(genome))  # first: an interrupting subclass stops before the call is logged
        finally:
            self.state_dir, self.sleep_s = saved
        self._log_call(f"{key}@r{rung}")
        self._maybe_break(key)
        if self.sleep_s:
            time.sleep(self.sleep_s / 4)
        out["accuracy"] -= 0.1 + 0.1 * (seed_from_string(f"low:{key}") % 1000) / 1000
        return out

    def describe(self) -> Mapping[str, Any]:
        """Settings that change results."""
        return {"toy": "zdt1", "n_tail": len(self.tail_bounds)}

    def _log_call(self, key: str) -> None:
        if self.state_dir is None:
            return
        fd = os.open(Path(self.state_dir) / "calls.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {key}\n".encode())
        finally:
            os.close(fd)

    def _maybe_break(self, key: str) -> None:
        code = seed_from_string(key)
        if self.crash_mod and code % self.crash_mod == 0:
            marker = Path(self.state_dir or ".") / f"crashed-{key}"
            if self.crash_always or not marker.exists():
                marker.touch()
                os._exit(3)
        if self.fail_mod and (code >> 8) % self.fail_mod == 0:
            raise RuntimeError(f"toy failure for {key}")


class InterruptingToy(ToyProblem):
    """The toy problem raising ``KeyboardInterrupt`` (a Ctrl-C) inside ``evaluate`` after ``n`` calls (resume tests)."""

    def __init__(self, n: int, **kw: Any) -> None:
        """Interrupt the ``n + 1``-th evaluation; ``kw`` as for :class:`ToyProblem`."""
        super().__init__(**kw)
        self.left = n

    def evaluate(self, genome: list[int]) -> dict:
        """:meth:`ToyProblem.evaluate`, or ``KeyboardInterrupt`` once ``n`` calls are spent."""
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return dict(super().evaluate(genome))


def read_calls(state_dir: str | Path) -> list[tuple[int, str]]:
    """The ``(pid, key)`` of every ``evaluate`` call logged in ``state_dir``."""
    path = Path(state_dir) / "calls.txt"
    if not path.exists():
        return []
    return [(int(pid), key) for pid, key in (line.split() for line in path.read_text().splitlines() if line)]


def main(argv: Sequence[str] | None = None) -> None:
    """Run a toy search: ``python -m nas.toy RUN_DIR [--resume] [--config JSON] [--problem JSON]``."""
    from nas.search import run_search

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--generations", type=int, default=None)
    parser.add_argument("--config", default="{}", help="SearchConfig fields as JSON")
    parser.add_argument("--problem", default="{}", help="ToyProblem arguments as JSON")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = {"backend": "inline", **json.loads(args.config)}
    if args.generations is not None:
        fields["generations"] = args.generations
    result = run_search(
        ToyProblem(**json.loads(args.problem)),
        SearchConfig(**fields),
        args.run_dir,
        resume=args.resume,
        progress=not args.no_progress,
    )
    print(json.dumps({"hypervolume": result.history[-1]["hypervolume"], "front": len(result.pareto)}))


if __name__ == "__main__":
    main()
