"""Command-line flags as data: each flag names the config field(s) it sets, so the CLI is built from a table.

A flag is declared once (here, or in a stage's registration when only that stage reads it); the
parser, the ``--config`` overrides and the "this flag has no effect in this mode" warning are all
derived from the declarations. Flags in :data:`GLOBAL_FLAGS` apply to every mode; every other flag
is read by the modes whose :class:`pipeline.stage.Stage` lists it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nas.operators import VARIATIONS


def comma_list(value: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (config lists given as one flag value)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def int_list(value: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``; anything else is a one-line argparse error naming what was expected."""
    try:
        return [int(part) for part in comma_list(value)]
    except ValueError:
        expected = "expected whole numbers separated by commas (e.g. 1,2)"
        raise argparse.ArgumentTypeError(f"{expected}, got {value!r}") from None


@dataclass(frozen=True)
class Flag:
    """One command-line flag and where its value goes in the config.

    Attributes:
        name: The flag, e.g. ``--epochs``; its argparse destination is the name without dashes.
        help: One line for ``--help``.
        targets: Dotted config paths the value is written to (e.g. ``train.epochs``); empty for a
            flag a stage reads from the parsed arguments itself.
        kwargs: Extra :meth:`argparse.ArgumentParser.add_argument` keywords (``type``, ``choices``,
            ``action``, ``metavar``, ``nargs``).
        convert: Applied to a given value before it is written (e.g. :func:`comma_list`).
        group: ``--help`` section.
        positional: A positional argument (``name`` without dashes) instead of an option.
        hints: Extra text for the inapplicable-flag warning, per mode.
    """

    name: str
    help: str
    targets: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    convert: Callable[[Any], Any] | None = None
    group: str = "options"
    positional: bool = False
    hints: dict[str, str] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        """The argparse destination (``--max-latency-ms`` -> ``max_latency_ms``)."""
        return self.name.lstrip("-").replace("-", "_")

    def given(self, args: argparse.Namespace) -> bool:
        """Whether the user gave this flag (store-true flags: set; positionals: non-empty)."""
        value = getattr(args, self.dest, None)
        return not (value is None or value is False or (isinstance(value, list) and not value))

    def value(self, args: argparse.Namespace) -> Any:
        """The config value of the flag, or None when it was not given."""
        if not self.given(args):
            return None
        value = getattr(args, self.dest)
        return self.convert(value) if self.convert else value

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Declare the flag on ``parser``."""
        if self.positional:
            parser.add_argument(self.dest, help=self.help, **self.kwargs)
        else:
            parser.add_argument(self.name, help=self.help, **self.kwargs)


def _dataset_auto(args: argparse.Namespace) -> str | None:
    return args.dataset if args.dataset is not None or args.dataset_path is None else "auto"


# Flags every mode accepts (no inapplicable-flag warning).
GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("--config", "YAML/TOML/JSON config file (sections as in config.json)", kwargs={"metavar": "FILE"}),
    Flag("--out", "run folder (default: runs/<run name or dataset>-<mode>)", kwargs={"metavar": "DIR"}),
    Flag("--dataset", "dataset loader name, or 'auto' (default: synthetic)", ("data.dataset",),
         kwargs={"metavar": "NAME"}),
    Flag("--dataset-path", "dataset root folder (or CSV manifest)", ("data.path",), kwargs={"metavar": "PATH"}),
    Flag("--split", "split protocol", ("data.split",), kwargs={"choices": ("official", "stratified", "speaker")}),
    Flag("--seed", "seed of training and search", ("run.seed",), kwargs={"type": int}),
    Flag("--jobs", "worker processes (-1: all cores)", ("run.jobs",), kwargs={"type": int}),
    Flag("--cache-dir", "where datasets and features are cached", ("run.cache_dir",), kwargs={"metavar": "DIR"}),
    Flag("--resume", "continue an interrupted run in --out", kwargs={"action": "store_true"}),
    Flag("--no-progress", "hide progress bars", ("run.progress",), kwargs={"action": "store_true"},
         convert=lambda _: False),
)  # fmt: skip

# Flags some modes read; a stage lists the names of those it reads.
SHARED_FLAGS: tuple[Flag, ...] = (
    Flag("--epochs", "training epochs", ("train.epochs",), kwargs={"type": int}, group="training",
         hints={"nas": "; the search's accuracy proxy uses --proxy-epochs"}),
    Flag("--seeds", "training runs per model (mean +- std reported)", ("baseline.seeds",), kwargs={"type": int},
         group="training"),
    Flag("--models", "baselines to train, comma-separated (default: all); with --cv also 'survivors' (the run's "
         "search survivors)", ("baseline.models",),
         kwargs={"metavar": "A,B"}, convert=comma_list, group="training"),
    Flag("--cv", "cross-validate the baselines: official (the dataset's folds), loso (leave one speaker out) or K "
         "folds (speaker-grouped where speakers are known)", ("baseline.cv",), kwargs={"metavar": "HOW"},
         group="training"),
    Flag("--nas-population", "individuals per generation (NSGA-II: multiple of 4)", ("nas.population",),
         kwargs={"type": int}, group="search"),
    Flag("--nas-generations", "generations after the initial population", ("nas.generations",),
         kwargs={"type": int}, group="search"),
    Flag("--strategy", "search strategy (random: the baseline)", ("nas.strategy",),
         kwargs={"choices": ("nsga2", "random")}, group="search"),
    Flag("--variation", "crossover + mutation of the search (uniform, the default: measured best on FSDD; sbx, "
         "step: ordinal-aware)", ("nas.search.variation",), kwargs={"choices": tuple(VARIATIONS)}, group="search"),
    Flag("--objectives", "objectives, e.g. accuracy,latency_ms,size_kb", ("nas.objectives",),
         kwargs={"metavar": "A,B"}, convert=comma_list, group="search"),
    Flag("--latency", "latency from device tables or timed here", ("nas.latency_source",),
         kwargs={"choices": ("table", "measure")}, group="search"),
    Flag("--devices", "latency devices (tables) to optimise for", ("nas.devices",), kwargs={"metavar": "A,B"},
         convert=comma_list, group="search"),
    Flag("--max-latency-ms", "constraint: latency on every device", ("nas.max_latency_ms",),
         kwargs={"type": float}, group="search"),
    Flag("--max-size-kb", "constraint: fp32 model size", ("nas.max_size_kb",), kwargs={"type": float},
         group="search"),
    Flag("--max-size-kb-int8", "constraint: model size as a static INT8 ONNX file stores its weights",
         ("nas.max_size_kb_int8",), kwargs={"type": float}, group="search"),
    Flag("--min-accuracy", "constraint: proxy validation accuracy", ("nas.min_accuracy",), kwargs={"type": float},
         group="search"),
    Flag("--proxy-epochs", "training epochs of the accuracy proxy", ("nas.proxy.epochs",), kwargs={"type": int},
         group="search"),
    Flag("--promote", "multi-fidelity search: share of each generation's new candidates trained on to the full proxy "
         "after --low-epochs (e.g. 0.25; the rest keep their low-epoch score)", ("nas.search.promote",),
         kwargs={"type": float, "metavar": "SHARE"}, group="search"),
    Flag("--low-epochs", "multi-fidelity search: the lower rungs' proxy epochs, increasing (default with --promote: "
         "1)", ("nas.low_epochs",), kwargs={"metavar": "E,E", "type": int_list}, group="search"),
    Flag("--backend", "where candidates are evaluated", ("nas.backend",),
         kwargs={"choices": ("loky", "dask", "inline")}, group="search"),
    Flag("--scheduler", "dask scheduler address (with --backend dask)", ("nas.scheduler",),
         kwargs={"metavar": "ADDRESS"}, group="search"),
    Flag("--device-name", "device (latency table) to collect, validate or predict for", ("latency.device",),
         kwargs={"metavar": "NAME"}, group="latency"),
    Flag("--space", "search space to search or collect a table for (default: mel2d)", ("nas.space", "latency.space"),
         kwargs={"metavar": "NAME"}, group="latency"),
    Flag("--threads", "ONNX Runtime intra-op threads for measurement (default: 1)", ("latency.timing.threads",),
         kwargs={"type": int}, group="latency"),
    Flag("--max-minutes", "minutes: table collection budget (default 10), search budget (default 10), --mode full's "
         "whole-run budget (default 20); 0: none",
         ("latency.max_minutes",),
         kwargs={"type": float}, group="latency"),
    Flag("--precision", "fp32 | int8: what --mode latency-table times (default fp32; int8: the op graphs quantized "
         "with the project's static recipe); elsewhere the precision the device tables must have",
         ("latency.precision",), kwargs={"choices": ("fp32", "int8")}, group="latency"),
    Flag("--n", "random specs measured by validate-latency (default: 100)", ("latency.validate_n",),
         kwargs={"type": int}, group="latency"),
    Flag("--strict", "refuse interpolated latency-table entries", ("latency.strict",),
         kwargs={"action": "store_true"}, group="latency"),
    Flag("--tables-dir", "folder of latency tables to write/read first", ("latency.tables_dir",),
         kwargs={"metavar": "DIR"}, group="latency"),
    Flag("--kit-dir", "device kit folder: written by latency-kit (default: <--out>/kit), read by latency-import "
         "(with the device's results/ inside)", ("latency.kit_dir",), kwargs={"metavar": "DIR"}, group="latency"),
    Flag("--survivors", "search front members kept for full training (crowding thinning; default 5)",
         ("quantize.survivors",), kwargs={"type": int, "metavar": "K"}, group="deployment"),
    Flag("--teacher", "distillation teacher: auto, a model of the run, or a checkpoint .pt",
         ("quantize.distill.teacher",), kwargs={"metavar": "NAME"}, group="deployment"),
    Flag("--max-accuracy-drop", "accuracy-aware INT8: largest validation drop vs fp32, in points (0.5)",
         ("quantize.max_accuracy_drop_pts",), kwargs={"type": float, "metavar": "PTS"}, group="deployment"),
    Flag("--calibration-method", "static INT8 calibration", ("quantize.calibration_method",),
         kwargs={"choices": ("minmax", "entropy", "percentile")}, group="deployment"),
    Flag("--compare", "other run folders to draw beside this one (random search, other seeds), comma-separated",
         ("reports.compare",), kwargs={"metavar": "RUN2,RUN3"}, convert=comma_list, group="reports"),
)  # fmt: skip

SHARED = {flag.dest: flag for flag in SHARED_FLAGS}


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Write ``value`` at ``a.b.c`` in a nested dict, creating sections on the way."""
    *sections, leaf = dotted.split(".")
    for name in sections:
        tree = tree.setdefault(name, {})
    tree[leaf] = value


def overrides(args: argparse.Namespace, flags: tuple[Flag, ...], targets: dict[str, tuple[str, ...]]) -> dict:
    """The config values given as flags, as a nested dict of the sections they set.

    Args:
        args: Parsed arguments.
        flags: Every declared flag (global and per-stage).
        targets: Per-flag target paths that replace the flag's own for this mode (by dest).
    """
    tree: dict[str, Any] = {}
    for flag in flags:
        value = _dataset_auto(args) if flag.dest == "dataset" else flag.value(args)
        if value is None:
            continue
        for path in targets.get(flag.dest, flag.targets):
            set_path(tree, path, value)
    return tree
