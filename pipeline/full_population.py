"""The first generation of a budgeted ``--mode full`` run: a population sized to the time the baselines left.

The whole-run budget (:mod:`pipeline.full_budget`) stops the search at a generation boundary,
but nothing stops generation 0: on a slow CPU, or a large dataset, the baselines plus a full
initial population can already use the whole budget. So before the search starts, the initial
population is sized from what this machine just measured: the baselines are networks of the
same space, trained with the same trainer on the same clips, so their seconds per epoch give
the proxy's cost of an average candidate here. The population is the largest (a multiple of 4
for NSGA-II, at most ``nas.population``) whose first generation, plus the quantization and
reports of one average survivor, fits in what is left.

The decision is kept in ``full_population.json``: a resumed run searches with the same
population (its search settings must not change), whatever the clock says then.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_json
from common.workers import available_cores
from nas.runfolder import SearchPaths
from pipeline.config import PipelineConfig
from pipeline.final_training import finished_runs
from pipeline.full_budget import cost_of_proxy, n_train_of

DECISION = "full_population.json"


@dataclass(frozen=True)
class PopulationChoice:
    """The initial population a budgeted full run searches with, and the line saying why (None: as asked)."""

    population: int
    line: str | None = None


def proxy_s_from_baselines(cfg: PipelineConfig, run_dir: Path, n_train: int) -> list[float]:
    """Each finished baseline run's training time scaled to the search proxy's epochs and clips (seconds).

    Uses the epochs each run actually trained (early stopping), so a run that stopped early is
    not taken for a fast network.
    """
    proxy = cfg.nas.proxy
    clips = proxy.subset_size(n_train) / max(1, n_train)
    estimates = []
    for name in cfg.baseline.models:
        for record in finished_runs(run_dir, name):
            train = record.get("train", {})
            wall_s, epochs = float(train.get("wall_s", 0.0) or 0.0), int(train.get("epochs_run", 0) or 0)
            if wall_s > 0 and epochs > 0:
                estimates.append(wall_s / epochs * proxy.epochs * clips)
    return estimates


def search_workers(cfg: PipelineConfig) -> int:
    """Candidates trained at once by the search's workers (``run.jobs``; -1: every core)."""
    return max(1, available_cores() if cfg.run.jobs < 0 else cfg.run.jobs)


def population_that_fits(cfg: PipelineConfig, candidate_s: float, left_s: float, n_train: int) -> int:
    """The largest initial population whose generation and one survivor's quantization fit ``left_s``.

    A multiple of 4 for NSGA-II (its tournament draws parents in fours), at most ``nas.population``,
    at least the smallest population the strategy accepts (even when that does not fit).
    """
    step = 4 if cfg.nas.strategy == "nsga2" else 1
    reserve_s = cost_of_proxy(cfg, [candidate_s], n_train).total_s
    workers = search_workers(cfg)
    population = cfg.nas.population
    while population > step and math.ceil(population / workers) * candidate_s + reserve_s > left_s:
        population -= step
    return population


def budgeted_population(cfg: PipelineConfig, run_dir: Path, spent_s: float) -> PopulationChoice:
    """The initial population of a budgeted full run's search (decided once, before it starts; see module).

    Args:
        cfg: The run's config (``nas.population`` is the most asked for).
        run_dir: The run folder, holding the finished baselines.
        spent_s: Seconds the whole run spent before the search.
    """
    asked = cfg.nas.population
    path = run_dir / DECISION
    if cfg.full.max_minutes is None:
        return PopulationChoice(asked)
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
            if kept.get("asked") == asked and kept.get("max_minutes") == cfg.full.max_minutes:
                return PopulationChoice(int(kept["population"]), kept.get("line"))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # decided again below
    if SearchPaths(run_dir).has_search():
        return PopulationChoice(asked)  # a search started without a decision searches as it began
    n_train = n_train_of(run_dir)
    estimates = proxy_s_from_baselines(cfg, run_dir, n_train)
    left_s = 60 * cfg.full.max_minutes - spent_s
    choice = PopulationChoice(asked)
    if estimates:
        candidate_s = sum(estimates) / len(estimates)
        population = population_that_fits(cfg, candidate_s, left_s, n_train)
        if population < asked:
            workers = search_workers(cfg)
            need_s = math.ceil(asked / workers) * candidate_s
            short = math.ceil(population / workers) * candidate_s + cost_of_proxy(cfg, [candidate_s], n_train).total_s
            tail = " (even that does not fit: the search stops after it)" if short > left_s else ""
            choice = PopulationChoice(population, (
                f"whole-run budget {cfg.full.max_minutes:g} min: a first generation of {asked} would take about "
                f"{need_s:.0f} s here ({candidate_s:.0f} s a candidate on {workers} worker(s), from the baselines' "
                f"training), {max(0.0, left_s):.0f} s are left: population {population}{tail} (--nas-population, "
                "or --max-minutes 0 for no budget)"
            ))  # fmt: skip
    atomic_write_json(path, {"asked": asked, "max_minutes": cfg.full.max_minutes, "population": choice.population,
                             "left_s": round(left_s, 1), "line": choice.line})  # fmt: skip
    return choice
