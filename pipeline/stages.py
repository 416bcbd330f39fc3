"""The registry of pipeline stages: one :class:`pipeline.stage.Stage` entry per ``--mode``, in pipeline order.

Adding a mode means writing its module(s) and adding one entry here; the CLI's choices, parser,
flag warnings, config sections and dispatch all come from this table.
"""

from __future__ import annotations

from pipeline.baseline_config import BaselineConfig
from pipeline.flags import GLOBAL_FLAGS, SHARED_FLAGS, Flag
from pipeline.full_config import FullConfig
from pipeline.nas_config import NasConfig
from pipeline.predict_config import PredictConfig
from pipeline.quantize_config import QuantizeConfig
from pipeline.reports_config import ReportsConfig
from pipeline.stage import Stage

_LATENCY_READS = ("device_name", "space", "threads", "tables_dir", "precision")
_NAS_READS = (
    "nas_population", "nas_generations", "strategy", "variation", "objectives", "latency", "devices", "max_latency_ms",
    "max_size_kb", "max_size_kb_int8", "min_accuracy", "proxy_epochs", "promote", "low_epochs", "backend",
    "scheduler", "strict", "max_minutes", *_LATENCY_READS,
)  # fmt: skip
_BASELINE_READS = ("epochs", "seeds", "models", "cv", "survivors")  # survivors: with --models ...,survivors
_REPORTS_READS = ("compare",)
_QUANTIZE_READS = (
    "epochs", "seeds", "threads", "device_name", "tables_dir", "survivors", "teacher", "max_accuracy_drop",
    "calibration_method",
)  # fmt: skip

FULL_ORDER = ("baseline", "nas", "quantization", "reports")  # what --mode full runs, in order

STAGES: tuple[Stage, ...] = (
    Stage(
        "features",
        "extract log-mel/MFCC/waveform features once into a cache, split, normalise",
        run="pipeline.features_stage:run",
        summary="pipeline.features_stage:summary",
    ),
    Stage(
        "baseline",
        "train the fixed baselines fully, test, mean +- std over --seeds",
        run="pipeline.baseline_stage:run",
        summary="pipeline.baseline_stage:summary",
        flags=_BASELINE_READS,
        section=("baseline", BaselineConfig),
        config_sections=("train",),
    ),
    Stage(
        "nas",
        "features, then the constrained NSGA-II search (or --strategy random)",
        run="pipeline.nas_stage:run_nas",
        summary="pipeline.nas_summary:summary_lines",
        flags=_NAS_READS,
        flag_targets=(("max_minutes", ("nas.max_minutes",)),),
        section=("nas", NasConfig),
        config_sections=("latency",),
        check_folder="pipeline.nas_stage:check_folder",
        resolve="pipeline.nas_stage:resolve_config",
    ),
    Stage(
        "quantization",
        "survivors and baselines of a run folder: full training, distillation, ONNX, INT8, all re-measured",
        run="pipeline.quantize_stage:run",
        summary="pipeline.quantize_stage:summary",
        flags=_QUANTIZE_READS,
        flag_targets=(("seeds", ("quantize.seeds",)),),
        section=("quantize", QuantizeConfig),
        run_folder="existing",
        check_folder="pipeline.quantize_stage:check_folder",
        needs="--out RUN holding --mode baseline and/or --mode nas results",
    ),
    Stage(
        "predict",
        "classify audio files (or folders) with an exported ONNX model: --model FILE.onnx PATH...",
        run="pipeline.predict_stage:run",
        summary="pipeline.predict_stage:summary",
        own_flags=(
            Flag(
                "--model",
                "ONNX model to classify with (its model card .json beside it)",
                ("predict.model",),
                kwargs={"metavar": "FILE.onnx"},
                group="predict",
            ),
            Flag(
                "inputs",
                "audio files or folders to classify (--mode predict)",
                ("predict.inputs",),
                kwargs={"nargs": "*", "metavar": "PATH"},
                positional=True,
                group="predict",
            ),
        ),
        section=("predict", PredictConfig),
        run_folder="none",
        needs="--model FILE.onnx (from --mode quantization) and audio files or folders",
    ),
    Stage(
        "reports",
        "figures (PDF+PNG), CSV/LaTeX tables and an offline index.html from a run folder alone",
        run="pipeline.reports_stage:run",
        summary="pipeline.reports_stage:summary",
        flags=_REPORTS_READS,
        section=("reports", ReportsConfig),
        run_folder="existing",
        check_folder="pipeline.reports_stage:check_folder",
        needs="--out RUN (any run folder; reports what it holds)",
    ),
    Stage(
        "full",
        "baseline -> nas -> quantization (survivors, distillation, INT8) -> reports in one run folder",
        run="pipeline.full_stage:run",
        summary="pipeline.full_stage:summary",
        # the stages of FULL_ORDER read these
        flags=tuple(dict.fromkeys((*_BASELINE_READS, *_NAS_READS, *_QUANTIZE_READS, *_REPORTS_READS))),
        flag_targets=(("seeds", ("baseline.seeds", "quantize.seeds")), ("max_minutes", ("full.max_minutes",))),
        section=("full", FullConfig),
        config_sections=("*",),
        check_folder="pipeline.full_stage:check_folder",
        resolve="pipeline.nas_stage:resolve_config",
    ),
    Stage(
        "latency-table",
        "collect this device's latency lookup table (--device-name NAME)",
        run="pipeline.latency_stage:run_latency_table",
        summary="pipeline.latency_stage:table_summary",
        flags=(*_LATENCY_READS, "max_minutes"),
        config_sections=("latency",),
    ),
    Stage(
        "validate-latency",
        "measure random specs here and compare with a table's predictions",
        run="pipeline.latency_stage:run_validate_latency",
        summary="pipeline.latency_stage:validation_summary",
        flags=(*_LATENCY_READS, "n", "strict"),
        config_sections=("latency",),
    ),
    Stage(
        "latency-kit",
        "write a device kit: op graphs, whole models and a timing script that needs only numpy and onnxruntime",
        run="pipeline.kit_stage:run_latency_kit",
        summary="pipeline.kit_stage:kit_lines",
        flags=("device_name", "space", "threads", "precision", "n", "kit_dir"),
        run_folder="none",
        needs="--device-name NAME; the kit goes to --kit-dir DIR (default <--out>/kit)",
    ),
    Stage(
        "latency-import",
        "build a device's latency table (and its validation) from a kit timed on the device",
        run="pipeline.kit_stage:run_latency_import",
        summary="pipeline.kit_stage:import_lines",
        flags=("kit_dir", "tables_dir"),
        config_sections=("latency",),
        needs="--kit-dir KIT (the kit folder, with the device's results/ inside)",
    ),
)

DEFAULT_MODE = "nas"


def get_stage(mode: str) -> Stage:
    """The registered stage of ``mode`` (argparse has already checked the name)."""
    return next(s for s in STAGES if s.mode == mode)


def stage_sections() -> dict[str, type]:
    """Config sections owned by stages, in registry order."""
    return dict(s.section for s in STAGES if s.section is not None)


def all_flags() -> list[Flag]:
    """Every flag: global, shared, then each stage's own (a flag declared twice is declared once)."""
    flags = {f.dest: f for f in (*GLOBAL_FLAGS, *SHARED_FLAGS)}
    for stage in STAGES:
        for flag in stage.own_flags:
            flags.setdefault(flag.dest, flag)
    return list(flags.values())
