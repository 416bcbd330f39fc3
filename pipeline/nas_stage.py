"""The search stage: features, the audio problem, the NSGA-II (or random) search, and a summary."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError
from latency_tables.layout import export_onnx
from latency_tables.ort_timing import TimingConfig, time_model
from latency_tables.registry import load_device, table_path
from latency_tables.table import LatencyTable, load_table
from nas.config import SearchConfig
from nas.problem import Constraint, ObjectiveSpec
from nas.search import SearchResult, run_search
from pipeline.config import PipelineConfig
from pipeline.data_stage import prepare_features
from pipeline.latency_stage import DEFAULT_DEVICE, model_input_shape
from pipeline.nas_problem import AudioProblem, DeviceTable, latency_metric, reference_values
from search_spaces import create_search_space, get_baseline


def _device_tables(cfg: PipelineConfig, shape: tuple[int, ...]) -> list[LatencyTable]:
    names = cfg.nas.devices or ((cfg.latency.device,) if cfg.latency.device else (DEFAULT_DEVICE,))
    tables = []
    for name in names:
        local = Path(cfg.latency.tables_dir or "") / f"{name}.csv"
        if cfg.latency.tables_dir and local.is_file():
            table = load_table(local)
        else:
            table_path(name)  # unknown device: a message listing the known ones
            table = load_device(name)
        table.check_compatible(cfg.nas.space, shape)
        tables.append(table)
    return tables


def _latency_references(cfg: PipelineConfig, tables: list[LatencyTable], n_classes: int, shape) -> dict[str, float]:
    """Hypervolume reference per latency objective: the bound if set, else the medium baseline's latency."""
    medium = get_baseline("medium")
    if cfg.nas.latency_source == "measure":
        if cfg.nas.max_latency_ms:
            return {latency_metric("local"): cfg.nas.max_latency_ms}
        model = create_search_space(medium.space).build(medium, n_classes, shape)
        measured = time_model(export_onnx(model, shape), TimingConfig(sessions=3).end_to_end()).latency_ms
        return {latency_metric("local"): measured}
    return {
        latency_metric(t.name): cfg.nas.max_latency_ms or t.predict(medium, n_classes=n_classes).latency_ms
        for t in tables
    }


def build_problem(cfg: PipelineConfig, run_dir: Path, n_classes: int, data_key: str) -> AudioProblem:
    """The :class:`AudioProblem` for the configured objectives, constraints and devices."""
    nas = cfg.nas
    shape = model_input_shape(nas.space, cfg)
    measure = nas.latency_source == "measure"
    tables = [] if measure else _device_tables(cfg, shape)
    worst = reference_values(nas.space, n_classes, shape, _latency_references(cfg, tables, n_classes, shape))
    bounds = {"size_kb": nas.max_size_kb, "macs_m": nas.max_macs_m}
    latency_names = [latency_metric("local")] if measure else [latency_metric(t.name) for t in tables]
    objectives = []
    for name in nas.objectives:
        if name in ("accuracy", "macro_f1"):
            objectives.append(ObjectiveSpec(name, "max", best=1.0, worst=0.0))
        elif name == "latency_ms":
            objectives += [ObjectiveSpec(m, "min", best=0.0, worst=worst[m]) for m in latency_names]
        else:
            objectives.append(ObjectiveSpec(name, "min", best=0.0, worst=bounds.get(name) or worst[name]))
    constraints = [Constraint.at_most(name, bound) for name, bound in bounds.items() if bound]
    if nas.max_latency_ms:
        constraints += [Constraint.at_most(m, nas.max_latency_ms) for m in latency_names]
    if nas.min_accuracy:
        constraints.append(Constraint.at_least("accuracy", nas.min_accuracy))
    return AudioProblem(
        run_dir, nas.space, shape, n_classes, objectives, constraints,
        [DeviceTable.of(t) for t in tables], measure, nas.proxy, cfg.run.seed, data_key, cfg.latency.strict,
    )  # fmt: skip


def search_config(cfg: PipelineConfig) -> SearchConfig:
    """The engine's settings: budget and strategy from ``nas``, seed from ``run``, workers from ``--jobs``."""
    jobs = cfg.run.jobs if cfg.run.jobs > 0 else (os.cpu_count() or 1)
    try:
        return _search_config(cfg, jobs)
    except ValueError as exc:
        raise UserError(f"nas: {exc}") from None


def _search_config(cfg: PipelineConfig, jobs: int) -> SearchConfig:
    return SearchConfig(
        population=cfg.nas.population,
        generations=cfg.nas.generations,
        strategy=cfg.nas.strategy,
        seed=cfg.run.seed,
        jobs=jobs,
        backend=cfg.nas.backend,
        scheduler=cfg.nas.scheduler,
        threads_per_worker=cfg.nas.proxy.num_threads,
    )


def run_nas(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> SearchResult:
    """``--mode nas``: prepare features, then search; returns the engine's result."""
    features = prepare_features(cfg, run_dir)
    problem = build_problem(cfg, run_dir, features.n_classes, features.cache_key)
    config = search_config(cfg)
    names = ", ".join(f"{o.name} ({o.direction}, ref {o.worst:g})" for o in problem.objectives)
    n_proxy = cfg.nas.proxy.subset_size(len(features.splits.train))
    limits = ", ".join(c.label for c in problem.constraints) or "none"
    print(
        f"[{features.dataset}] {cfg.nas.strategy} search over {cfg.nas.space}: population {config.population}, "
        f"{config.generations} generations after the initial one, {config.jobs} worker(s), proxy "
        f"{cfg.nas.proxy.epochs} epochs on {n_proxy} train clips, scored on "
        f"{len(features.splits.val)} validation clips\n  objectives: {names}\n  constraints: {limits}"
    )
    return run_search(problem, config, run_dir, resume=resume, progress=cfg.run.progress, on_generation=_report)


def _report(row: dict) -> bool:
    """One line per finished generation (the progress bar shows the generation in flight)."""
    hv = row.get("hypervolume")
    print(
        f"  generation {row['generation']}: {row['evaluations']} candidates ({row['full_evaluations']} trained), "
        f"{row['feasible_total']} feasible, front {row['front_size']}, hypervolume "
        f"{'-' if hv is None else f'{hv:.4f}'}, {row['elapsed_s']:.0f} s",
        flush=True,
    )
    return False
