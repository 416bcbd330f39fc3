"""The search engine alone on analytic problems, against pymoo's NSGA2 and Optuna's NSGAIISampler.

Usage: python benchmarks/bench_engine.py [--seeds 5] [--population 40] [--budgets 400 2000]
       [--variations uniform sbx step] [--peers pymoo pymoo-d optuna] [--problems zdt1 zdt2 zdt3 dtlz2]
       [--engine LABEL=JSON ...] [--json FILE]

Needs the ``bench`` extra (``pip install -e .[bench]``: pymoo, optuna); a peer that is not
installed is left out of the table.

Problems: ZDT1, ZDT2, ZDT3 (30 variables, 2 objectives) and DTLZ2 (12 variables, 3 objectives),
every variable discretised to 101 integer levels (``x = gene / 100``), minimised.

Contestants, each with population 40 and the same number of proposals (the budget):

* ``engine[<variation>]``: :func:`nas.search.run_search` (inline backend, journal and checkpoint
  on disk, as in a real search) with each ``SearchConfig.variation``, everything else default;
* ``pymoo``: ``NSGA2`` with pymoo's documented recipe for integer variables
  (pymoo.org/customization/discrete.html): ``IntegerRandomSampling``, ``SBX(prob=1.0, eta=3.0)``
  and ``PM(prob=1.0, eta=3.0)`` with ``vtype=float`` and ``RoundingRepair``, ``eliminate_duplicates``;
* ``pymoo-d``: ``NSGA2`` with its default SBX (eta 15, prob 0.9) and PM (eta 20), rounded alike;
* ``optuna``: ``NSGAIISampler(population_size=40)``, its defaults otherwise, ``suggest_int`` per gene.

Measure: the hypervolume of everything each contestant evaluated within the budget (its first
``budget`` proposals; a duplicate it evaluated again, or a proposal it spent on a candidate it
had already seen, counts against it), computed by moocore for all, at two fixed reference
points: ``near``, 1.1 per objective, the usual one for these problems (only points close to the
true front count: it measures convergence, and is 0 early on, when nobody is close yet), and
``all``, 1.1 x the largest value an objective can take (every evaluated point counts: progress
from the first generation). One search of the largest budget per contestant and seed gives every
smaller budget as a prefix: each of them proposes exactly what it would with the smaller budget.
Mean +- std over the seeds, and the two-sided Mann-Whitney U p-value of the default variation
against each peer (with 5 seeds each, the smallest possible p is 0.008).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import moocore
import numpy as np

from nas.config import SearchConfig
from nas.journal import Journal
from nas.operators import DEFAULT_VARIATION, VARIATIONS
from nas.problem import ObjectiveSpec, SearchProblem
from nas.search import run_search

LEVELS = 101
WORST = 11.0  # the engine's own box (its hypervolume column only; survival does not depend on it)


def _zdt_g(x: np.ndarray) -> np.ndarray:
    return 1.0 + 9.0 * x[:, 1:].mean(axis=1)


def zdt1(x: np.ndarray) -> np.ndarray:
    g = _zdt_g(x)
    return np.column_stack([x[:, 0], g * (1.0 - np.sqrt(x[:, 0] / g))])


def zdt2(x: np.ndarray) -> np.ndarray:
    g = _zdt_g(x)
    return np.column_stack([x[:, 0], g * (1.0 - (x[:, 0] / g) ** 2)])


def zdt3(x: np.ndarray) -> np.ndarray:
    g = _zdt_g(x)
    f1 = x[:, 0]
    return np.column_stack([f1, g * (1.0 - np.sqrt(f1 / g) - f1 / g * np.sin(10.0 * math.pi * f1))])


def dtlz2(x: np.ndarray) -> np.ndarray:
    g = ((x[:, 2:] - 0.5) ** 2).sum(axis=1)
    a, b = x[:, 0] * math.pi / 2, x[:, 1] * math.pi / 2
    r = 1.0 + g
    return np.column_stack([r * np.cos(a) * np.cos(b), r * np.cos(a) * np.sin(b), r * np.sin(a)])


# name -> (function, number of variables, the best value of each objective)
PROBLEMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int, tuple[float, ...]]] = {
    "zdt1": (zdt1, 30, (0.0, 0.0)),
    "zdt2": (zdt2, 30, (0.0, 0.0)),
    "zdt3": (zdt3, 30, (0.0, -1.0)),
    "dtlz2": (dtlz2, 12, (0.0, 0.0, 0.0)),
}
# The two reference points (minimisation): "near", 1.1 per objective, the usual one for these problems
# (only points near the true front count: it measures convergence, and is 0 for everyone early on);
# "all", 1.1 x the largest value each objective can take (ZDT: f1 <= 1, f2 <= g <= 10; DTLZ2: (1 + g) <= 3.5),
# so every evaluated point counts: it measures progress from the first generation.
REFERENCES: dict[str, dict[str, tuple[float, ...]]] = {
    "near": {name: (1.1,) * len(best) for name, (_, _, best) in PROBLEMS.items()},
    "all": {"zdt1": (1.1, 11.0), "zdt2": (1.1, 11.0), "zdt3": (1.1, 11.0), "dtlz2": (3.85, 3.85, 3.85)},
}


def objectives_of(genes: np.ndarray, name: str) -> np.ndarray:
    """Objective rows of integer genomes (shape (n, n_var), levels 0..100) of problem ``name``."""
    return PROBLEMS[name][0](np.asarray(genes, dtype=float).reshape(len(genes), -1) / (LEVELS - 1))


class AnalyticProblem(SearchProblem):
    """One of :data:`PROBLEMS` as a :class:`SearchProblem` (every gene ordinal, 101 levels)."""

    def __init__(self, name: str) -> None:
        self.name = name
        _, n_var, best = PROBLEMS[name]
        self.gene_bounds = [LEVELS - 1] * n_var
        self.objectives = [ObjectiveSpec(f"f{i + 1}", "min", b, WORST) for i, b in enumerate(best)]

    def evaluate(self, genome: list[int]) -> dict[str, float]:
        row = objectives_of(np.array([genome]), self.name)[0]
        return {f"f{i + 1}": float(v) for i, v in enumerate(row)}

    def describe(self) -> dict[str, str]:
        return {"problem": self.name}


def hypervolume(points: np.ndarray, reference: tuple[float, ...]) -> float:
    """Hypervolume of ``points`` (minimised) against ``reference``, by moocore (points beyond it add nothing)."""
    points = np.asarray(points, dtype=float)
    ref = np.array(reference)
    inside = points[np.all(points < ref, axis=1)]
    return float(moocore.hypervolume(inside, ref=ref)) if len(inside) else 0.0


# Every runner returns the objective rows it evaluated, one per proposal's evaluation, in order,
# and (for the engine) the generation of each; a budget is then a prefix.


def run_engine(name: str, seed: int, population: int, budget: int, fields: dict[str, Any]) -> list[np.ndarray]:
    """Objective rows the engine recorded after each generation (cumulative), for ``budget`` proposals.

    ``fields`` are ``SearchConfig`` settings (e.g. ``{"variation": "sbx"}``); the rest are defaults.
    """
    problem = AnalyticProblem(name)
    budget_fields = {"population": population, "generations": budget // population - 1, "seed": seed}
    config = SearchConfig(**{**fields, **budget_fields, "backend": "inline"})
    with tempfile.TemporaryDirectory() as folder:
        run_search(problem, config, folder, progress=False)
        records = Journal(Path(folder) / "nas" / "journal.jsonl").read()
    names = [o.name for o in problem.objectives]
    rows = [(r.generation, [r.metrics[n] for n in names]) for r in records]
    return [np.array([f for g, f in rows if g <= generation]) for generation in range(budget // population)]


def run_pymoo(name: str, seed: int, population: int, budget: int, defaults: bool) -> np.ndarray:
    """Objective rows pymoo's NSGA2 evaluated, in order."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    evaluated: list[np.ndarray] = []
    _, n_var, _ = PROBLEMS[name]

    class Discrete(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=n_var, n_obj=len(PROBLEMS[name][2]), xl=0, xu=LEVELS - 1, vtype=int)

        def _evaluate(self, x, out, *args, **kwargs):
            out["F"] = objectives_of(np.round(x).astype(int), name)
            evaluated.append(out["F"])

    if defaults:
        crossover = SBX(vtype=float, repair=RoundingRepair())
        mutation = PM(vtype=float, repair=RoundingRepair())
    else:
        crossover = SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair())
        mutation = PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair())
    algorithm = NSGA2(
        pop_size=population,
        sampling=IntegerRandomSampling(),
        crossover=crossover,
        mutation=mutation,
        eliminate_duplicates=True,
    )
    minimize(Discrete(), algorithm, ("n_eval", budget), seed=seed, verbose=False)
    return np.concatenate(evaluated)[:budget]


def run_optuna(name: str, seed: int, population: int, budget: int) -> np.ndarray:
    """Objective rows Optuna's NSGAIISampler evaluated, in order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, n_var, best = PROBLEMS[name]

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        genes = [trial.suggest_int(f"x{i}", 0, LEVELS - 1) for i in range(n_var)]
        return tuple(float(v) for v in objectives_of(np.array([genes]), name)[0])

    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=["minimize"] * len(best), sampler=sampler)
    study.optimize(objective, n_trials=budget)
    return np.array([t.values for t in study.trials])


def contestants(engines: dict[str, dict[str, Any]], peers: list[str]) -> list[str]:
    """The contestants' names; peers whose package is missing are left out (with a note)."""
    names = [f"engine[{label}]" for label in engines]
    for peer in peers:
        module = "pymoo" if peer.startswith("pymoo") else peer
        try:
            __import__(module)
        except ImportError:
            print(f"note: {peer} left out ({module} is not installed: pip install -e .[bench])")
            continue
        names.append(peer)
    return names


def measure(
    name: str, problem: str, seed: int, population: int, budgets: list[int], engines: dict[str, dict[str, Any]]
) -> dict[str, dict[int, float]]:
    """Hypervolume (per reference point, per budget) of one contestant on one problem and seed."""
    top = max(budgets)
    if name.startswith("engine["):
        per_generation = run_engine(problem, seed, population, top, engines[name[len("engine[") : -1]])
        archives = {b: per_generation[b // population - 1] for b in budgets}
    else:
        if name.startswith("pymoo"):
            rows = run_pymoo(problem, seed, population, top, defaults=name == "pymoo-d")
        else:
            rows = run_optuna(problem, seed, population, top)
        archives = {b: rows[:b] for b in budgets}
    return {
        ref: {b: hypervolume(points, refs[problem]) for b, points in archives.items()}
        for ref, refs in REFERENCES.items()
    }


def mann_whitney(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U p-value (NaN without scipy or with constant equal samples)."""
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:  # pragma: no cover
        return math.nan
    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f}+-{spread:.4f}"


def table(results: dict, names: list[str], budgets: list[int], problems: list[str], default: str) -> str:
    """The results as one plain-text table: mean +- std per contestant, p-values of ``default`` vs each peer."""
    peers = [n for n in names if not n.startswith("engine[")]
    header = ["problem", "ref", "evals", *names, *[f"p({default} vs {p})" for p in peers]]
    lines = [header]
    for problem in problems:
        for ref in REFERENCES:
            for budget in budgets:
                hv = {n: [results[n][problem][s][ref][budget] for s in sorted(results[n][problem])] for n in names}
                cells = [_mean_std(v) for v in hv.values()]
                p_values = [f"{mann_whitney(hv[default], hv[p]):.3f}" for p in peers]
                ref_text = "x".join(f"{r:g}" for r in REFERENCES[ref][problem])
                lines.append([problem, f"{ref} ({ref_text})", str(budget), *cells, *p_values])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--budgets", type=int, nargs="+", default=[400, 2000])
    parser.add_argument("--variations", nargs="+", default=list(VARIATIONS), choices=list(VARIATIONS))
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="LABEL=JSON",
        help='an extra engine contestant with these SearchConfig fields, e.g. \'sbx3={"variation": "sbx", ...}\'',
    )
    parser.add_argument("--peers", nargs="+", default=["pymoo", "pymoo-d", "optuna"])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--json", type=Path, help="also write every hypervolume to this file")
    args = parser.parse_args()
    bad = [b for b in args.budgets if b % args.population or b < 2 * args.population]
    if bad:
        parser.error(f"budgets must be multiples of the population ({args.population}), at least two generations")
    logging.getLogger("nas").setLevel(logging.ERROR)  # exhausted novelty retries are warned per generation
    engines: dict[str, dict[str, Any]] = {v: {"variation": v} for v in args.variations}
    for item in args.engine:
        label, _, fields = item.partition("=")
        engines[label] = json.loads(fields)
    names = contestants(engines, args.peers)
    results: dict = {n: {p: {} for p in args.problems} for n in names}
    wall: dict[str, float] = dict.fromkeys(names, 0.0)
    for problem in args.problems:
        for name in names:
            for seed in range(args.seeds):
                start = time.perf_counter()
                results[name][problem][seed] = measure(name, problem, seed, args.population, args.budgets, engines)
                wall[name] += time.perf_counter() - start
            print(f"  {problem} {name}: done", flush=True)
    default = f"engine[{DEFAULT_VARIATION}]"
    print(
        "\nHypervolume (moocore) of everything evaluated within the budget, at two fixed reference points (see the "
        f"module docstring); population {args.population}, {args.seeds} seeds, mean+-std; p: two-sided Mann-Whitney U\n"
    )
    print(table(results, names, sorted(args.budgets), args.problems, default if default in names else names[0]))
    print("\nwall seconds per search of the largest budget: " + ", ".join(
        f"{n} {wall[n] / (args.seeds * len(args.problems)):.1f}" for n in names
    ))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"results": results, "wall_s": wall}, indent=1))


if __name__ == "__main__":
    main()
