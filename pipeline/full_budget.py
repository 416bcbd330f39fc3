"""The whole-run budget of ``--mode full``: how long quantization and reports will take after the search.

The search is the only stage whose length is elastic, so it is the one that gives way: at each
generation boundary it is stopped when the time spent on the whole run, plus its next
generation, plus the estimated cost of what follows it, would pass ``full.max_minutes``.

The estimate comes from the search's own measurements: every candidate's proxy training time is
in the journal, and full training is the same network for more epochs on (at most) more clips.
For the survivors the current front would give, it sums their full training (plain, then
distilled once the teacher is chosen, for ``quantize.seeds`` seeds, each phase spread over the
training workers), QAT fine-tuning for
half of the models, and a fixed export-and-measurement cost per model (``full.variant_s``).

When even the first generation leaves too little time (a large dataset), the quantization
takes the most survivors that fit (:func:`survivors_that_fit`): fewer by crowding distance, else
the most accurate front member that fits alone, else none (the baselines are still quantized);
the decision is kept in ``full_budget.json`` so that a resumed run quantizes the same models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from common.atomic import atomic_write_json
from common.workers import available_cores
from nas.journal import Journal
from nas.runfolder import SearchPaths
from pipeline.config import PipelineConfig
from pipeline.survivors import select_survivors
from search_spaces import list_baselines

REPORTS_S = 30.0  # figures, tables and the HTML page (measured: 8-23 s)


@dataclass(frozen=True)
class AfterSearch:
    """The estimated cost of quantization and reports if the search stopped now."""

    training_s: float
    variants_s: float
    reports_s: float = REPORTS_S

    @property
    def total_s(self) -> float:
        """Everything after the search, in seconds."""
        return self.training_s + self.variants_s + self.reports_s


def after_search(cfg: PipelineConfig, run_dir: Path, n_train: int, records: dict | None = None) -> AfterSearch:
    """Estimate quantization and reports for the survivors the search's current front gives.

    Args:
        cfg: The run's config (train, quantize and nas.proxy settings).
        run_dir: The run folder (its ``nas/`` front and journal are read).
        n_train: Clips in the train split.
        records: The journal's records by key, when the caller has read them already.
    """
    q = cfg.quantize
    if records is None:
        records = _records(run_dir)  # read once per boundary
    survivors, _ = select_survivors(run_dir, q.survivors, records, q.survivor_specs) if q.survivors else ([], [])
    return cost_of(cfg, [s.spec for s in survivors], records, n_train)


def full_over_proxy(cfg: PipelineConfig, n_train: int) -> float:
    """How many times longer full training is than the proxy for the same network: epochs x clips."""
    proxy = cfg.nas.proxy
    return (cfg.train.epochs / max(1, proxy.epochs)) * (n_train / max(1, proxy.subset_size(n_train)))


def cost_of(cfg: PipelineConfig, specs: list[str], records: dict, n_train: int) -> AfterSearch:
    """Estimate quantization and reports when the survivors are ``specs`` (journal ``records`` by key)."""
    proxy_s = [float(getattr(records.get(spec), "wall_s", 0.0) or 0.0) for spec in specs]
    return cost_of_proxy(cfg, proxy_s, n_train)


def cost_of_proxy(cfg: PipelineConfig, proxy_s: list[float], n_train: int) -> AfterSearch:
    """Estimate quantization and reports for survivors whose proxy trainings took ``proxy_s`` seconds each."""
    q = cfg.quantize
    per_survivor = [full_over_proxy(cfg, n_train) * s for s in proxy_s]
    distilled = q.distill.students != "none"
    runs = [t for t in per_survivor for _ in range(q.seeds)]
    workers = max(1, min(available_cores() if cfg.run.jobs < 0 else cfg.run.jobs, len(runs) or 1))
    phase_s = max(sum(runs) / workers, max(runs, default=0.0))  # plain runs, spread over the workers
    training_s = phase_s * (2 if distilled else 1)  # the students start once the teacher is chosen
    n_models = len(list_baselines()) + len(proxy_s) * (2 if distilled else 1)
    qat_s = 0.5 * (q.qat_epochs / max(1, cfg.train.epochs)) * sum(per_survivor) * (2 if distilled else 1)
    return AfterSearch(training_s=training_s, variants_s=n_models * cfg.full.variant_s + qat_s)


class WholeRunBudget:
    """The stop rule the search gets in ``--mode full``: whole-run time left for what comes after it.

    Called at each generation boundary with the last history row (``elapsed_s``: the search's
    time across sessions; ``next_wall_s``: the next generation's expected time, from its bred
    candidates' costs through the cost model when it can, see :func:`nas.search.run_search`).
    """

    def __init__(self, cfg: PipelineConfig, run_dir: Path, spent_before_s: float, n_train: int) -> None:
        """``spent_before_s``: seconds the whole run spent before the search (the baselines)."""
        self.cfg, self.run_dir, self.n_train = cfg, run_dir, n_train
        self.budget_s = None if cfg.full.max_minutes is None else 60 * cfg.full.max_minutes
        self.spent_before_s = spent_before_s
        self.last: AfterSearch | None = None
        self.stopped = False

    def __call__(self, row: dict) -> bool:
        """True (stop) when the next generation and everything after the search would pass the budget."""
        if self.budget_s is None or not row:
            return False
        self.last = after_search(self.cfg, self.run_dir, self.n_train)
        next_s = float(row.get("next_wall_s", row["wall_s"]))
        projected = self.spent_before_s + float(row["elapsed_s"]) + next_s + self.last.total_s
        self.stopped = projected > self.budget_s
        return self.stopped

    def line(self) -> str:
        """What the rule decided, for the console."""
        if self.last is None:
            return ""
        minutes = self.cfg.full.max_minutes
        verb = "stopped the search" if self.stopped else "left the search running"
        return (f"whole-run budget {minutes:g} min (--max-minutes): {verb}, keeping {self.last.total_s:.0f} s "
                f"estimated for quantization and reports ({self.last.training_s:.0f} s training, "
                f"{self.last.variants_s:.0f} s export and INT8 variants)")  # fmt: skip


DECISION = "full_budget.json"


@dataclass(frozen=True)
class SurvivorChoice:
    """What the quantization of a budgeted full run takes: ``survivors`` (and, when pinned, which ``specs``)."""

    survivors: int
    specs: tuple[str, ...] = ()  # empty: crowding-distance thinning to ``survivors``
    line: str | None = None  # why, for the console (None: as configured)


def survivors_that_fit(cfg: PipelineConfig, run_dir: Path, n_train: int, left_s: float) -> SurvivorChoice:
    """The most survivors, from ``quantize.survivors`` down, whose estimated quantization fits ``left_s``.

    Thinning by crowding distance first; when not even its one survivor fits, the most accurate
    front member that fits alone (the front's cheap models train in a fraction of the time of its
    most accurate one); when none does, no survivor (the baselines are still quantized).
    """
    records = _records(run_dir)  # read once for every trial below
    for k in range(cfg.quantize.survivors, 0, -1):
        trial = replace(cfg, quantize=replace(cfg.quantize, survivors=k, survivor_specs=()))
        if after_search(trial, run_dir, n_train, records).total_s <= left_s:
            return SurvivorChoice(k)
    front, _ = select_survivors(run_dir, len(records), records)  # the whole front, most accurate first
    for member in front:
        if cost_of(cfg, [member.spec], records, n_train).total_s <= left_s:
            return SurvivorChoice(1, (member.spec,))
    return SurvivorChoice(0)


def budgeted_survivors(cfg: PipelineConfig, run_dir: Path, spent_s: float) -> SurvivorChoice:
    """The survivors the quantization of a budgeted full run takes, and the line saying why.

    Decided once and kept in ``full_budget.json``; a resumed run reuses the decision.
    """
    path = run_dir / DECISION
    asked, pinned = cfg.quantize.survivors, cfg.quantize.survivor_specs
    if cfg.full.max_minutes is None or asked < 1 or pinned or not SearchPaths(run_dir).has_search():
        return SurvivorChoice(asked, pinned)
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
            if kept.get("asked") == asked and kept.get("max_minutes") == cfg.full.max_minutes:
                return SurvivorChoice(int(kept["survivors"]), tuple(kept.get("specs", ())), kept.get("line"))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # decided again below
    n_train = n_train_of(run_dir)
    left_s = 60 * cfg.full.max_minutes - spent_s
    choice = survivors_that_fit(cfg, run_dir, n_train, left_s)
    if choice.survivors < asked or choice.specs:
        need = after_search(cfg, run_dir, n_train).total_s
        head = (f"whole-run budget {cfg.full.max_minutes:g} min: {asked} survivor(s) would need about {need:.0f} s, "
                f"{max(0.0, left_s):.0f} s are left: ")  # fmt: skip
        if choice.specs:
            what = f"quantizing the most accurate front member that fits alone ({choice.specs[0]})"
        elif choice.survivors:
            what = f"quantizing the {choice.survivors} that fit"
        else:
            what = f"no survivor fits, quantizing the baselines only (then --mode quantization --out {run_dir})"
        choice = replace(choice, line=head + what + " (--survivors, or --max-minutes 0 for no budget)")
    atomic_write_json(path, {"asked": asked, "max_minutes": cfg.full.max_minutes, "survivors": choice.survivors,
                             "specs": list(choice.specs), "left_s": round(left_s, 1), "line": choice.line})  # fmt: skip
    return choice


def _records(run_dir: Path) -> dict:
    return {r.key: r for r in Journal(SearchPaths(run_dir).journal).read()}


def n_train_of(run_dir: Path) -> int:
    """Clips in the run's train split (``data/summary.json``; 1 when unreadable)."""
    try:
        summary = json.loads((run_dir / "data" / "summary.json").read_text())
        return int(summary["split_sizes"]["train"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1
