"""``--mode full``: baseline -> nas -> quantization (survivors, distillation, INT8) -> reports, into one run folder.

Resumable as a whole: with ``--resume`` a stage the stage log (``stages.jsonl``) records as
finished with the same config is skipped, and the interrupted one continues (each stage is
itself resumable); the reports are always regenerated (they only read the folder).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.stage_log import StageLog, config_hash
from nas.runfolder import SearchPaths
from pipeline.config import PipelineConfig
from pipeline.stages import FULL_ORDER

ORDER = FULL_ORDER


@dataclass
class FullResult:
    """Per stage: its result (None when skipped), and whether it was skipped as already finished."""

    results: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    wall_s: dict[str, float] = field(default_factory=dict)


def check_folder(run_dir: Path, resume: bool) -> None:
    """A new full run into a folder holding a search is refused (continue it with ``--resume``)."""
    if not resume and SearchPaths(run_dir).has_search():
        raise UserError(
            f"{run_dir} already holds a search: continue the whole run with --resume, or start one with another --out"
        )


def check_inputs(cfg: PipelineConfig) -> None:
    """What later stages would refuse, checked before hours of training: ``--compare`` folders, a teacher checkpoint.

    Raises:
        UserError: Naming the input.
    """
    if cfg.baseline.cv:
        raise UserError(f"--cv {cfg.baseline.cv} cross-validates the baselines of --mode baseline; --mode full "
                        "needs them trained on the run's split (quantization, distillation): drop --cv")  # fmt: skip
    for path in cfg.reports.compare:
        if not Path(path).is_dir():
            raise UserError(f"--compare {path} is not a folder (expected the --out of another run)")
    teacher = cfg.quantize.distill.teacher
    if teacher.endswith(".pt") and not Path(teacher).is_file():
        raise UserError(f"--teacher {teacher}: no such checkpoint")
    if cfg.reports.out_dir and Path(cfg.reports.out_dir).is_file():
        raise UserError(f"reports.out_dir {cfg.reports.out_dir} is a file; name a folder")


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> FullResult:
    """Run every stage in order (see the module docstring)."""
    from pipeline.api import Pipeline

    check_inputs(cfg)
    pipe = Pipeline(cfg, out=run_dir)
    records = StageLog(run_dir).records()
    current = config_hash(cfg.to_dict())
    result = FullResult()
    for i, mode in enumerate(ORDER, start=1):
        record = records.get(mode)
        if resume and mode != "reports" and record and record.finished and record.config_hash == current:
            result.skipped.append(mode)
            print(f"[{i}/{len(ORDER)}] {mode}: finished earlier with the same settings, skipped", flush=True)
            continue
        stage_resume = _resume(mode, run_dir, resume, record is not None)
        print(f"[{i}/{len(ORDER)}] {mode}{' (resumed)' if stage_resume else ''}", flush=True)
        start = time.monotonic()
        options = {"whole_run_spent_s": _spent_before(result, records)} if mode == "nas" else {}
        if mode == "nas":
            _fit_population(pipe, run_dir, options["whole_run_spent_s"])
        if mode == "quantization":
            _fit_survivors(pipe, run_dir, _spent_before(result, records, run_dir))
        outcome, _ = pipe.run_stage(mode, stage_resume, **options)
        result.results[mode] = outcome
        result.wall_s[mode] = time.monotonic() - start
        for line in pipe.summary(mode, outcome, run_dir):
            if not line.startswith("next:"):  # a stage's own next step is the next stage here
                print(f"    {line}", flush=True)
        print(f"[{i}/{len(ORDER)}] {mode} done in {result.wall_s[mode]:.0f} s", flush=True)
    return result


def _fit_population(pipe, run_dir: Path, spent_s: float) -> None:
    """Size the search's first generation to the whole-run budget (see :mod:`pipeline.full_population`)."""
    from pipeline.full_population import budgeted_population

    choice = budgeted_population(pipe.config, run_dir, spent_s)
    if choice.line:
        print(f"    {choice.line}", flush=True)
    nas = pipe.config.nas
    if choice.population != nas.population:
        pipe.config = dataclasses.replace(pipe.config, nas=dataclasses.replace(nas, population=choice.population))


def _fit_survivors(pipe, run_dir: Path, spent_s: float) -> None:
    """Quantize as many survivors as the whole-run budget leaves time for (see :mod:`pipeline.full_budget`)."""
    from pipeline.full_budget import budgeted_survivors

    choice = budgeted_survivors(pipe.config, run_dir, spent_s)
    if choice.line:
        print(f"    {choice.line}", flush=True)
    q = pipe.config.quantize
    if (choice.survivors, choice.specs) != (q.survivors, q.survivor_specs):
        chosen = dataclasses.replace(q, survivors=choice.survivors, survivor_specs=choice.specs)
        pipe.config = dataclasses.replace(pipe.config, quantize=chosen)


def _spent_before(result: FullResult, records: dict, run_dir: Path | None = None) -> float:
    """Seconds the whole run spent on the stages before now: this session's, or as logged when skipped.

    The search's share is at least its own time across every session (``elapsed_s`` of its
    history): a stage log line records one session only.
    """
    spent = {mode: wall for mode, wall in result.wall_s.items()}
    for mode in result.skipped:
        spent[mode] = float(getattr(records.get(mode), "wall_s", 0.0) or 0.0)
    if run_dir is not None and "nas" in spent:
        spent["nas"] = max(spent["nas"], _search_elapsed_s(run_dir))
    return sum(spent.values())


def _search_elapsed_s(run_dir: Path) -> float:
    import csv

    try:
        with open(SearchPaths(run_dir).folder / "history.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["elapsed_s"]) if rows else 0.0
    except (OSError, KeyError, ValueError):
        return 0.0


def _resume(mode: str, run_dir: Path, resume: bool, started_before: bool) -> bool:
    if mode == "nas":
        return SearchPaths(run_dir).has_search()  # a new full run was refused if it held one
    return resume and started_before


def summary(result: FullResult, run_dir: Path) -> list[str]:
    """Where to look first."""
    total = sum(result.wall_s.values())
    skipped = f" ({', '.join(result.skipped)} skipped: finished earlier)" if result.skipped else ""
    return [
        f"full run finished in {total:.0f} s{skipped}; open first:",
        f"  {run_dir / 'reports' / 'index.html'}   every figure and table, offline",
        f"  {run_dir / 'reports' / 'model_comparison.csv'}   final models x variants (LaTeX: model_comparison.tex)",
        f"  {run_dir / 'quantization_results.csv'}   every variant re-measured; ONNX files in {run_dir / 'onnx'}/",
        f"  {run_dir / 'nas' / 'pareto.csv'}   the search's Pareto front",
    ]
