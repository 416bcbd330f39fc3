"""The whole-run budget of ``--mode full``: how long quantization and reports will take after the search.

The search is the only stage whose length is elastic, so it is the one that gives way: at each
generation boundary it is stopped when the time spent on the whole run, plus its next
generation, plus the estimated cost of what follows it, would pass ``full.max_minutes``.

The estimate comes from the search's own measurements: every candidate's proxy training time is
in the journal, and full training is the same network for more epochs on (at most) more clips.
For the survivors the current front would give, it sums their full training (once plain, once
distilled, for ``quantize.seeds`` seeds, spread over the training workers), QAT fine-tuning for
half of the models, and a fixed export-and-measurement cost per model (``full.variant_s``).

When even the first generation leaves too little time (a large dataset), the quantization
takes the most survivors that fit (:func:`survivors_that_fit`), at least one; the decision is
kept in ``full_budget.json`` so that a resumed run quantizes the same models.
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


def after_search(cfg: PipelineConfig, run_dir: Path, n_train: int) -> AfterSearch:
    """Estimate quantization and reports for the survivors the search's current front gives.

    Args:
        cfg: The run's config (train, quantize and nas.proxy settings).
        run_dir: The run folder (its ``nas/`` front and journal are read).
        n_train: Clips in the train split.
    """
    q = cfg.quantize
    records = {r.key: r for r in Journal(SearchPaths(run_dir).journal).read()}  # read once per boundary
    survivors, _ = select_survivors(run_dir, q.survivors, records) if q.survivors else ([], [])
    proxy = cfg.nas.proxy
    scale = (cfg.train.epochs / max(1, proxy.epochs)) * (n_train / max(1, proxy.subset_size(n_train)))
    per_survivor = [scale * float(getattr(records.get(s.spec), "wall_s", 0.0) or 0.0) for s in survivors]
    distilled = q.distill.students != "none"
    runs = [t for t in per_survivor for _ in range(q.seeds)] * (2 if distilled else 1)
    workers = max(1, min(available_cores() if cfg.run.jobs < 0 else cfg.run.jobs, len(runs) or 1))
    training_s = max(sum(runs) / workers, max(runs, default=0.0))
    n_models = len(list_baselines()) + len(survivors) * (2 if distilled else 1)
    qat_s = 0.5 * (q.qat_epochs / max(1, cfg.train.epochs)) * sum(per_survivor) * (2 if distilled else 1)
    return AfterSearch(training_s=training_s, variants_s=n_models * cfg.full.variant_s + qat_s)


class WholeRunBudget:
    """The stop rule the search gets in ``--mode full``: whole-run time left for what comes after it.

    Called at each generation boundary with the last history row (``elapsed_s``: the search's
    time across sessions; ``wall_s``: that generation's time, taken as the next one's).
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
        projected = self.spent_before_s + float(row["elapsed_s"]) + float(row["wall_s"]) + self.last.total_s
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


def survivors_that_fit(cfg: PipelineConfig, run_dir: Path, n_train: int, left_s: float) -> int:
    """The most survivors, from ``quantize.survivors`` down to 1, whose estimated quantization fits ``left_s``."""
    for k in range(cfg.quantize.survivors, 1, -1):
        trial = replace(cfg, quantize=replace(cfg.quantize, survivors=k))
        if after_search(trial, run_dir, n_train).total_s <= left_s:
            return k
    return min(1, cfg.quantize.survivors)


def budgeted_survivors(cfg: PipelineConfig, run_dir: Path, spent_s: float) -> tuple[int, str | None]:
    """The survivors the quantization of a budgeted full run takes, and the line saying why (None: as configured).

    Decided once and kept in ``full_budget.json``; a resumed run reuses the decision.
    """
    path = run_dir / DECISION
    asked = cfg.quantize.survivors
    if cfg.full.max_minutes is None or asked <= 1 or not SearchPaths(run_dir).has_search():
        return asked, None
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
            if kept.get("asked") == asked and kept.get("max_minutes") == cfg.full.max_minutes:
                return int(kept["survivors"]), kept.get("line")
        except (OSError, ValueError, KeyError, TypeError):
            pass  # decided again below
    n_train = _n_train(run_dir)
    left_s = 60 * cfg.full.max_minutes - spent_s
    k = survivors_that_fit(cfg, run_dir, n_train, left_s)
    line = None
    if k < asked:
        need = after_search(cfg, run_dir, n_train).total_s
        line = (f"whole-run budget {cfg.full.max_minutes:g} min: {asked} survivors would need about {need:.0f} s, "
                f"{max(0.0, left_s):.0f} s are left: quantizing the {k} that fit (--survivors, or --max-minutes 0 "
                "for no budget)")  # fmt: skip
    atomic_write_json(path, {"asked": asked, "max_minutes": cfg.full.max_minutes, "survivors": k,
                             "left_s": round(left_s, 1), "line": line})  # fmt: skip
    return k, line


def _n_train(run_dir: Path) -> int:
    try:
        summary = json.loads((run_dir / "data" / "summary.json").read_text())
        return int(summary["split_sizes"]["train"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1
