"""A run folder loaded into typed data: the search, the trained models, their variants, latency validation.

Only the files of the run folder are read (no training, no measurement, no torch). Anything
absent stays ``None``; :func:`missing_parts` says which mode makes it. Damaged files become
notes (see :mod:`reports.run_files`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import UserError
from nas.journal import Journal
from nas.problem import Constraint, ObjectiveSpec
from nas.records import EvalRecord
from reports.metrics import LOCAL_DEVICE, is_latency, latency_metric
from reports.run_files import jsonl_damage, read_csv, read_json

RUN_MARKERS = ("config.json", "data", "nas", "models")


@dataclass(frozen=True)
class SearchInfo:
    """The search's settings as recorded in ``nas/search.json``.

    Attributes:
        objectives: Objectives with their hypervolume box (``worst`` is the reference point).
        constraints: Constraints on named metrics.
        strategy: ``nsga2`` or ``random`` (``unknown`` when not recorded).
        seed: The search's seed, if recorded.
        population: Individuals per generation.
        generations: Generations planned after the initial population (None when unknown).
        devices: Latency table names the search predicted for, in order.
        device_fingerprints: Table fingerprint per device name, as the search recorded them.
        space: Search space name.
        latency_measured: Whether latency was timed during the search instead of predicted.
        proxy: The proxy training settings the search recorded (epochs, train_subset, ...).
        inferred: True when ``search.json`` was missing and this was inferred from the journal.
    """

    objectives: list[ObjectiveSpec]
    constraints: list[Constraint]
    strategy: str = "unknown"
    seed: int | None = None
    population: int | None = None
    generations: int | None = None
    devices: list[str] = field(default_factory=list)
    device_fingerprints: dict[str, str] = field(default_factory=dict)
    space: str | None = None
    latency_measured: bool = False
    proxy: dict[str, Any] = field(default_factory=dict)
    inferred: bool = False

    @property
    def reference(self) -> dict[str, float]:
        """The hypervolume reference point in original units (each objective's ``worst``)."""
        return {o.name: o.worst for o in self.objectives}

    def reference_text(self) -> str:
        """``accuracy=0, latency_ms_x=5, size_kb=512`` (the reference point, original units)."""
        return ", ".join(f"{o.name}={o.worst:g}" for o in self.objectives)


@dataclass
class RunData:
    """Everything a report uses from one run folder; absent parts are None.

    Attributes:
        run_dir: The folder as given (relative paths stay relative).
        config: ``config.json`` (resolved config), {} when absent.
        summary: ``data/summary.json`` (dataset, classes, split protocol and sizes).
        search: Search settings, None without a search.
        records: Journal records in file order (empty without a search).
        history: ``nas/history.csv``.
        baselines: ``baseline_results.csv``.
        survivors: ``survivors.csv``.
        training: ``training_results.csv``.
        quantization: ``quantization_results.csv``.
        quantization_meta: ``quantization_results.json`` (machine, proxy fidelity, teacher, ...).
        latency_validation: ``latency/latency_validation.csv``.
        latency_validation_meta: ``latency/latency_validation.json``.
        notes: What was damaged or inferred while reading.
    """

    run_dir: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None = None
    search: SearchInfo | None = None
    records: list[EvalRecord] = field(default_factory=list)
    history: pd.DataFrame | None = None
    baselines: pd.DataFrame | None = None
    survivors: pd.DataFrame | None = None
    training: pd.DataFrame | None = None
    quantization: pd.DataFrame | None = None
    quantization_meta: dict[str, Any] | None = None
    latency_validation: pd.DataFrame | None = None
    latency_validation_meta: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run folder's name (how the run is called in legends)."""
        return self.run_dir.resolve().name or str(self.run_dir)

    @property
    def dataset(self) -> str:
        """Dataset name (summary first, then config)."""
        if self.summary and self.summary.get("dataset"):
            return str(self.summary["dataset"])
        return str(self.config.get("data", {}).get("dataset") or "unknown dataset")

    @property
    def split_protocol(self) -> str:
        """The split protocol as recorded (e.g. ``speaker-disjoint, test speaker nicolas``)."""
        if self.summary and self.summary.get("split_protocol"):
            return str(self.summary["split_protocol"])
        split = self.config.get("data", {}).get("split")
        return f"{split} split" if split else "split not recorded"

    @property
    def split_sizes(self) -> dict[str, int]:
        """Clips per split (train/val/test), {} when unknown."""
        sizes = (self.summary or {}).get("split_sizes") or {}
        return {k: int(v) for k, v in sizes.items()}

    def protocol_text(self) -> str:
        """One line: dataset, split protocol and split sizes."""
        sizes = self.split_sizes
        counts = " / ".join(f"{k} {sizes[k]}" for k in ("train", "val", "test") if k in sizes)
        return f"{self.dataset}; split: {self.split_protocol}" + (f"; clips {counts}" if counts else "")

    @property
    def latency_metrics(self) -> list[str]:
        """Latency metrics present in the journal (one per device), in the search's device order."""
        found = {m for r in self.records for m in r.metrics if is_latency(m)}
        order = [latency_metric(d) for d in (self.search.devices if self.search else [])]
        return [m for m in order if m in found] + sorted(found - set(order))

    @property
    def device_names(self) -> list[str]:
        """Devices of the search (table names), plus ``local`` when latency was measured."""
        names = list(self.search.devices) if self.search else []
        return [*names, LOCAL_DEVICE] if self.search and self.search.latency_measured else names

    @property
    def machine(self) -> dict[str, Any] | None:
        """The machine the quantized variants were measured on (``quantization_results.json``)."""
        return (self.quantization_meta or {}).get("machine")

    @property
    def has_search(self) -> bool:
        """Whether the folder holds a search (settings or journal)."""
        return self.search is not None


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` looks like a run folder (``config.json`` or one of ``data/``, ``nas/``, ``models/``)."""
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def load_run(run_dir: Path) -> RunData:
    """Read a run folder.

    Raises:
        UserError: ``run_dir`` does not exist or is not a run folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run folder {run_dir} does not exist; give --out the folder of a run (e.g. runs/fsdd-nas)")
    if not is_run_folder(run_dir):
        raise UserError(
            f"{run_dir} is not a run folder (no config.json, data/, nas/ or models/); give --out a folder written by "
            "--mode baseline, nas or quantization"
        )
    notes: list[str] = []
    run = RunData(run_dir=run_dir, config=read_json(run_dir / "config.json", notes) or {}, notes=notes)
    run.summary = read_json(run_dir / "data" / "summary.json", notes)
    _load_search(run, notes)
    run.baselines = read_csv(run_dir / "baseline_results.csv", notes)
    run.survivors = read_csv(run_dir / "survivors.csv", notes)
    run.training = read_csv(run_dir / "training_results.csv", notes)
    run.quantization = read_csv(run_dir / "quantization_results.csv", notes)
    run.quantization_meta = read_json(run_dir / "quantization_results.json", notes)
    run.latency_validation = read_csv(run_dir / "latency" / "latency_validation.csv", notes)
    run.latency_validation_meta = read_json(run_dir / "latency" / "latency_validation.json", notes)
    return run


def _load_search(run: RunData, notes: list[str]) -> None:
    nas_dir = run.run_dir / "nas"
    journal = nas_dir / "journal.jsonl"
    damaged = jsonl_damage(journal)
    if damaged:
        notes.append(
            f"nas/journal.jsonl: {len(damaged)} unreadable line(s) skipped (line {', '.join(map(str, damaged[:5]))}); "
            "a torn last line is what a killed run leaves, and --mode nas --resume repairs it"
        )
    run.records = Journal(journal).read() if journal.is_file() else []
    settings = read_json(nas_dir / "search.json", notes)
    run.search = _search_info(settings) if settings else None
    if run.search is None and run.records:
        run.search = _inferred_search(run.records)
        notes.append(
            "nas/search.json is missing: objectives and the hypervolume reference were inferred from the journal "
            "(accuracy, latency and size; reference = the worst value seen), so hypervolumes are not the search's"
        )
    run.history = read_csv(nas_dir / "history.csv", notes)


def _search_info(data: dict[str, Any]) -> SearchInfo | None:
    try:
        settings = data["settings"]
        problem = settings["problem"]
        objectives = [ObjectiveSpec(o["name"], o["direction"], float(o["best"]), float(o["worst"]))
                      for o in problem["objectives"]]  # fmt: skip
        constraints = [Constraint(c["metric"], c["op"], float(c["bound"]), c.get("scale"))
                       for c in problem.get("constraints", [])]  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None
    config = {**data.get("config", {}), **settings.get("config", {})}
    describe = problem.get("describe", {}) or {}
    devices = [d.get("name") for d in describe.get("devices", []) or [] if isinstance(d, dict) and d.get("name")]
    fingerprints = {d["name"]: d.get("fingerprint") for d in describe.get("devices", []) or [] if isinstance(d, dict)}
    return SearchInfo(
        objectives=objectives,
        constraints=constraints,
        strategy=str(config.get("strategy") or "unknown"),
        seed=config.get("seed"),
        population=config.get("population"),
        generations=config.get("generations"),
        devices=devices,
        device_fingerprints=fingerprints,
        space=describe.get("space"),
        latency_measured=bool(describe.get("measure")),
        proxy=describe.get("proxy") if isinstance(describe.get("proxy"), dict) else {},
    )


def _inferred_search(records: list[EvalRecord]) -> SearchInfo:
    """Objectives guessed from the journal: accuracy (max), every latency metric and size (min)."""
    names = sorted({m for r in records for m in r.metrics})
    chosen = [n for n in names if n == "accuracy"] + [n for n in names if is_latency(n)]
    chosen += [n for n in names if n == "size_kb"]
    objectives = []
    for name in chosen:
        values = [float(r.metrics[name]) for r in records if name in r.metrics and math.isfinite(r.metrics[name])]
        if name == "accuracy":
            objectives.append(ObjectiveSpec(name, "max", 1.0, 0.0))
        elif values and max(values) > 0:
            objectives.append(ObjectiveSpec(name, "min", 0.0, max(values)))
    return SearchInfo(objectives=objectives, constraints=[], inferred=True)


def missing_parts(run: RunData) -> list[str]:
    """What the folder does not hold yet, each with the mode that makes it."""
    out = str(run.run_dir)
    missing = []
    if not run.has_search:
        missing.append(f"search results (Pareto front, hypervolume per generation): run --mode nas --out {out}")
    elif not run.records:
        missing.append(f"search evaluations (nas/journal.jsonl is empty): run --mode nas --resume --out {out}")
    elif _search_unfinished(run):
        done = generations_done(run)
        missing.append(
            f"the rest of the search ({done} of {run.search.generations + 1} generations finished): "
            f"run --mode nas --resume --out {out}"
        )
    if run.baselines is None:
        missing.append(f"trained baselines (tiny/small/medium/DS-CNN): run --mode baseline --out {out}")
    if run.quantization is None:
        missing.append(
            f"quantization results (survivors fully trained, INT8 variants, measured latency, proxy fidelity): "
            f"run --mode quantization --out {out}"
        )
    if run.latency_validation is None:
        missing.append(f"latency validation (table prediction vs measurement): run --mode validate-latency --out {out}")
    return missing


def generations_done(run: RunData) -> int:
    """Generations the search has finished (from its history)."""
    if run.history is not None and "generation" in run.history and len(run.history):
        return int(run.history["generation"].max()) + 1
    return 0


def _search_unfinished(run: RunData) -> bool:
    planned = run.search.generations if run.search else None
    return planned is not None and generations_done(run) < planned + 1
