"""The search stage: features, the audio problem, the NSGA-II (or random) search, and a summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from common.errors import UserError
from common.workers import worker_count
from latency_tables.device_info import device_metadata
from latency_tables.device_match import match_this_machine
from latency_tables.table import LatencyTable
from nas.backends import check_scheduler_address
from nas.config import SearchConfig
from nas.problem import Constraint, ObjectiveSpec
from nas.runfolder import SearchPaths
from nas.search import SearchResult, run_search
from pipeline.config import PipelineConfig
from pipeline.data_stage import check_data_inputs, prepare_features
from pipeline.latency_stage import DEFAULT_DEVICE, model_input_shape, resolve_table
from pipeline.nas_problem import AudioProblem, AudioSettings, DeviceTable, latency_metric, reference_values
from pipeline.search_data import search_data_line, search_data_record, write_search_data
from search_spaces import create_search_space
from train.device import resolve_amp, resolve_device


def _device_tables(cfg: PipelineConfig, shape: tuple[int, ...]) -> list[LatencyTable]:
    names = cfg.nas.devices or ((cfg.latency.device,) if cfg.latency.device else (DEFAULT_DEVICE,))
    metrics = [latency_metric(n) for n in names]
    if len(set(metrics)) != len(metrics):
        raise UserError(f"nas.devices {', '.join(names)}: each device must be named once (and names must differ "
                        "in more than '-'/'.' vs '_')")  # fmt: skip
    tables = [resolve_table(cfg, name) for name in names]
    for table in tables:
        table.check_compatible(cfg.nas.space, shape)
        table.check_precision(cfg.latency.precision)
    return tables


def _check_coverage(cfg: PipelineConfig, tables: list[LatencyTable], n_classes: int, shape: tuple[int, ...]) -> None:
    """Refuse before the search what a table cannot predict for some spec of the space.

    Without this, a partial table would stop the search at the first candidate that needs a
    missing op (every time it is resumed): with ``--strict`` any unmeasured op, otherwise an op
    of a kind the table has never measured (nothing to interpolate from).
    """
    if not tables:
        return
    from latency_tables.keys import space_ops

    ops = sorted(space_ops(create_search_space(cfg.nas.space), n_classes, shape), key=lambda op: op.key)
    for table in tables:
        for strict in (False, True) if cfg.latency.strict else (False,):
            try:
                table.predict_ops(ops, strict=strict)
            except UserError as exc:  # first: kinds with nothing to interpolate from; then: any unmeasured op
                hint = " (or leave out --strict to interpolate them)" if strict else ""
                raise UserError(f"{exc}{hint}; the search space needs {len(ops)} ops") from None


def _latency_references(
    cfg: PipelineConfig, tables: list[LatencyTable], n_classes: int, shape: tuple[int, ...], measure: bool
) -> dict[str, float]:
    """Hypervolume reference per latency objective: the bound if set, else the reference spec's latency."""
    from pipeline.nas_problem import reference_spec

    if measure:
        if not cfg.nas.max_latency_ms:
            raise UserError("--latency measure needs --max-latency-ms (it is also the hypervolume reference, fixed "
                            "for the whole run)")  # fmt: skip
        return {latency_metric("local"): cfg.nas.max_latency_ms}
    spec = reference_spec(cfg.nas.space, n_classes, shape)
    return {
        latency_metric(t.name): cfg.nas.max_latency_ms or t.predict(spec, n_classes=n_classes).latency_ms
        for t in tables
    }


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"torch": torch.__version__.split("+")[0], "onnxruntime": onnxruntime.__version__}


def _fidelity_line(cfg: PipelineConfig) -> str:
    """How a multi-fidelity search trains its candidates (empty for one fidelity)."""
    share = cfg.nas.search.promote
    if share is None:
        return ""
    rungs = " -> ".join(f"{e}" for e in (*cfg.nas.low_epochs, cfg.nas.proxy.epochs))
    return (
        f"  multi-fidelity: every new candidate trained {rungs} epochs in rungs, the best {share:.0%} of each rung "
        "promoted to the next; the others keep their lower-epoch score (pareto.csv's fidelity column)\n"
    )


def build_problem(cfg: PipelineConfig, run_dir: Path, n_classes: int, data: str) -> AudioProblem:
    """The :class:`AudioProblem` for the configured objectives, constraints and devices."""
    nas = cfg.nas
    shape = model_input_shape(nas.space, cfg)
    measure = nas.latency_source == "measure"
    needs_latency = "latency_ms" in nas.objectives or bool(nas.max_latency_ms)
    tables = _device_tables(cfg, shape) if needs_latency and not measure else []
    measure = measure and needs_latency
    _check_coverage(cfg, tables, n_classes, shape)
    worst = reference_values(nas.space, n_classes, shape, _latency_references(cfg, tables, n_classes, shape, measure))
    device = resolve_device(nas.proxy.device)
    amp = resolve_amp(nas.proxy.amp, device)
    settings = AudioSettings(
        run_dir=str(Path(run_dir).resolve()),
        space=nas.space,
        input_shape=shape,
        n_classes=n_classes,
        data=data,
        proxy=nas.proxy,
        proxy_device=device.type,
        amp="off" if amp is None else str(amp).removeprefix("torch."),
        seed=cfg.run.seed,
        devices=tuple(DeviceTable.of(t) for t in tables),
        measure=cfg.latency.timing if measure else None,
        machine={k: v for k, v in device_metadata().items() if k != "python"} if measure else None,
        strict=cfg.latency.strict,
        versions=_versions(),
        low_epochs=nas.low_epochs,  # empty unless nas.search.promote is set (NasConfig checks)
    )
    latency_names = [latency_metric("local")] if measure else [latency_metric(t.name) for t in tables]
    bounds = {"size_kb": nas.max_size_kb, "size_kb_int8": nas.max_size_kb_int8, "macs_m": nas.max_macs_m}
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
    problem = AudioProblem(settings, objectives, constraints)
    problem.gene_kinds = create_search_space(nas.space).gene_kinds  # ordinal or categorical, for the operators
    return problem


def search_config(cfg: PipelineConfig) -> SearchConfig:
    """The engine's settings: ``nas.search``, budget and strategy from ``nas``, seed and workers from ``run``.

    ``nas.search`` holds the engine's own settings (variation operators, probabilities, retries).

    ``--jobs`` is capped at the cores and the candidates of a generation for loky (a warning says
    so); dask places tasks itself, so there it only counts what is submitted at once.

    Raises:
        UserError: An invalid setting (e.g. a population that is not a multiple of 4), or a
            ``--scheduler`` that is not a dask address, named.
    """
    if cfg.nas.backend == "inline":
        jobs = 1
    elif cfg.nas.backend == "loky":
        jobs = worker_count(cfg.run.jobs, cfg.nas.population, "candidates per generation")
    else:
        jobs = cfg.run.resolved_jobs
        if cfg.nas.scheduler:
            check_scheduler_address(cfg.nas.scheduler)
    try:
        return cfg.nas.search.engine(
            population=cfg.nas.population,
            generations=cfg.nas.generations,
            strategy=cfg.nas.strategy,
            seed=cfg.run.seed,
            jobs=jobs,
            backend=cfg.nas.backend,
            scheduler=cfg.nas.scheduler,
            threads_per_worker=cfg.nas.proxy.num_threads,
        )
    except ValueError as exc:
        raise UserError(f"nas: {exc}") from None


def resolve_config(cfg: PipelineConfig) -> PipelineConfig:
    """The config with the latency devices made explicit (``nas.devices`` empty means the default table)."""
    if cfg.nas.devices or cfg.nas.latency_source == "measure":
        return cfg
    device = cfg.latency.device or DEFAULT_DEVICE
    return dataclasses.replace(cfg, nas=dataclasses.replace(cfg.nas, devices=(device,)))


def device_lines(cfg: PipelineConfig, shape: tuple[int, ...]) -> list[str]:
    """Which machine each table latency describes, and once, plainly, when that is not this machine."""
    if cfg.nas.latency_source != "table" or not ("latency_ms" in cfg.nas.objectives or cfg.nas.max_latency_ms):
        return []
    lines, other = [], False
    for table in _device_tables(cfg, shape):
        match = match_this_machine(table.meta)
        lines.append(f"  {latency_metric(table.name)}: {table.precision} models, predicted by the table of "
                     f"{table.name}, measured on {match.label()}")  # fmt: skip
        other = other or (match.known and not match.same)
    if other:
        lines.append(
            "  note: these latencies are another CPU's, not this machine's; for this machine collect its table "
            "(python complete_pipeline.py --mode latency-table --device-name NAME --max-minutes 15, then "
            "--devices NAME) or time each candidate here (--latency measure)"
        )
    return lines


def check_folder(run_dir: Path, resume: bool) -> None:
    """Refuse, before anything is written, a new search into a folder holding one.

    A resume of a folder holding no search yet (a run killed while it prepared its features)
    starts the search: the same command with ``--resume`` always continues.

    Raises:
        UserError: Naming what the folder holds and what to do.
    """
    has_search = SearchPaths(run_dir).has_search()  # the engine's own test (settings, journal or checkpoint)
    if not resume and has_search:
        raise UserError(
            f"{run_dir} already holds a search: continue it with --resume, or start a new one with another --out"
        )


def check_inputs(cfg: PipelineConfig) -> SearchConfig:
    """Refuse, before any features are extracted, what the search would refuse later: its settings and tables.

    Returns:
        The engine's settings (:func:`search_config`).

    Raises:
        UserError: An unwritable cache, a missing dataset path, invalid search settings, a latency
            device without a usable table (or a table for another space or input shape), or
            ``--latency measure`` without ``--max-latency-ms``.
    """
    check_data_inputs(cfg)
    config = search_config(cfg)
    nas = cfg.nas
    if "latency_ms" in nas.objectives or nas.max_latency_ms:
        if nas.latency_source == "measure" and not nas.max_latency_ms:
            raise UserError("--latency measure needs --max-latency-ms (it is also the hypervolume reference, fixed "
                            "for the whole run)")  # fmt: skip
        if nas.latency_source == "table":
            _device_tables(cfg, model_input_shape(nas.space, cfg))
    return config


def run_nas(
    cfg: PipelineConfig, run_dir: Path, resume: bool = False, whole_run_spent_s: float | None = None
) -> SearchResult:
    """``--mode nas``: prepare features, then search; returns the engine's result.

    Args:
        cfg: The run's config.
        run_dir: The run folder.
        resume: Continue the search in ``run_dir``.
        whole_run_spent_s: Inside ``--mode full``: seconds the whole run spent before the search;
            the search then also stops where ``full.max_minutes`` leaves just the time the
            quantization and reports of its current front are estimated to need
            (:class:`pipeline.full_budget.WholeRunBudget`).
    """
    config = check_inputs(cfg)  # invalid settings and tables are refused before any work
    if resume and not SearchPaths(run_dir).has_search():
        print(f"--resume: {run_dir} holds no search yet (nas/ is empty): starting it", flush=True)
        resume = False
    features = prepare_features(cfg, run_dir)
    problem = build_problem(cfg, run_dir, features.n_classes, features.fingerprint)
    names = ", ".join(f"{o.name} ({o.direction}, ref {o.worst:g})" for o in problem.objectives)
    limits = ", ".join(c.label for c in problem.constraints) or "none"
    n_proxy = cfg.nas.proxy.subset_size(len(features.splits.train))
    data_record = search_data_record(run_dir, features, n_proxy)  # the test split is never read: say what is
    print(
        f"[{features.dataset}] {cfg.nas.strategy} search over {cfg.nas.space}: population {config.population}, "
        f"{config.generations} generations after the initial one, {config.jobs} worker(s), proxy "
        f"{cfg.nas.proxy.epochs} epochs on {n_proxy} train clips ({problem.settings.proxy_device}), scored on "
        f"{len(features.splits.val)} validation clips\n{_fidelity_line(cfg)}  objectives: {names}\n  constraints: "
        f"{limits}\n  {search_data_line(data_record, counts=False)}\n  "
        + (
            f"time budget {cfg.nas.max_minutes:g} min (--max-minutes; it stops at the deadline, mid-generation if "
            "need be, keeping every finished training; --resume continues)"
            if cfg.nas.max_minutes
            else "no time budget"
        )
    )
    for line in device_lines(cfg, model_input_shape(cfg.nas.space, cfg)):
        print(line, flush=True)
    reporter = GenerationReporter(config.generations)
    on_generation, before_generation = reporter, None
    whole = None
    if whole_run_spent_s is not None and cfg.full.max_minutes is not None:
        from pipeline.full_budget import WholeRunBudget

        whole = WholeRunBudget(cfg, run_dir, whole_run_spent_s, len(features.splits.train))
        print(f"  whole-run budget {cfg.full.max_minutes:g} min (--max-minutes): the search stops where the "
              "quantization and reports would not fit, estimated from the front's proxy training times")  # fmt: skip

        def on_generation(row: dict) -> bool:
            reporter(row)
            return int(row["generation"]) < config.generations and whole(row)

        before_generation = whole

    def before_each(row: dict) -> bool:
        write_search_data(run_dir, data_record)  # the engine has accepted the start: record what it reads
        return before_generation is not None and before_generation(row)

    result = run_search(
        problem,
        config,
        run_dir,
        resume=resume,
        progress=cfg.run.progress,
        on_generation=on_generation,
        before_generation=before_each,
        budget_s=60 * cfg.nas.max_minutes if cfg.nas.max_minutes else None,
    )
    write_search_data(run_dir, data_record)  # also when no generation was left to run
    if whole is not None and whole.line():
        print("  " + whole.line(), flush=True)
    return result


class GenerationReporter:
    """Prints one line per finished generation.

    The time budget (``nas.max_minutes``) is the engine's deadline (``run_search(budget_s=...)``):
    the search runs until it, mid-generation if need be, keeps every finished training and
    continues exactly with ``--resume``.
    """

    def __init__(self, generations: int) -> None:
        self.generations = generations

    def __call__(self, row: dict) -> bool:
        """Print the generation's line; never stops the search (False)."""
        hv = row.get("hypervolume")
        print(
            f"  generation {row['generation']}: {row['evaluations']} candidates ({row['full_evaluations']} trained), "
            f"{row['feasible_total']} feasible, front {row['front_size']}, hypervolume "
            f"{'-' if hv is None else f'{hv:.4f}'}, {row['elapsed_s']:.0f} s",
            flush=True,
        )
        return False
