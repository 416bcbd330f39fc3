"""The registry of pipeline stages: one :class:`pipeline.stage.Stage` entry per ``--mode``, in pipeline order.

Adding a mode means writing its module(s) and adding one entry here; the CLI's choices, parser,
flag warnings, config sections and dispatch all come from this table.
"""

from __future__ import annotations

from pipeline.baseline_config import BaselineConfig
from pipeline.flags import Flag
from pipeline.nas_config import NasConfig
from pipeline.predict_config import PredictConfig
from pipeline.quantize_config import QuantizeConfig
from pipeline.stage import Stage

_LATENCY_READS = ("device_name", "space", "threads", "tables_dir")
_NAS_READS = (
    "nas_population", "nas_generations", "strategy", "objectives", "latency", "devices", "max_latency_ms",
    "max_size_kb", "min_accuracy", "proxy_epochs", "backend", "scheduler", "strict", *_LATENCY_READS,
)  # fmt: skip

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
        flags=("epochs", "seeds", "models"),
        section=("baseline", BaselineConfig),
    ),
    Stage(
        "nas",
        "features, then the constrained NSGA-II search (or --strategy random)",
        run="pipeline.nas_stage:run_nas",
        summary="pipeline.nas_summary:summary_lines",
        flags=_NAS_READS,
        section=("nas", NasConfig),
        check_folder="pipeline.nas_stage:check_folder",
    ),
    Stage(
        "quantization",
        "survivors and baselines of a run folder: full training, distillation, ONNX, INT8, all re-measured",
        run="pipeline.quantize_stage:run",
        summary="pipeline.quantize_stage:summary",
        flags=("epochs", "seeds", "threads", "device_name", "tables_dir"),
        own_flags=(
            Flag(
                "--survivors",
                "search front members kept for full training (crowding thinning; default 5)",
                ("quantize.survivors",),
                kwargs={"type": int, "metavar": "K"},
                group="deployment",
            ),
            Flag(
                "--teacher",
                "distillation teacher: auto, a model of the run, or a checkpoint .pt",
                ("quantize.distill.teacher",),
                kwargs={"metavar": "NAME"},
                group="deployment",
            ),
            Flag(
                "--max-accuracy-drop",
                "accuracy-aware INT8: largest validation drop vs fp32, in points (0.5)",
                ("quantize.max_accuracy_drop_pts",),
                kwargs={"type": float, "metavar": "PTS"},
                group="deployment",
            ),
            Flag(
                "--calibration-method",
                "static INT8 calibration",
                ("quantize.calibration_method",),
                kwargs={"choices": ("minmax", "entropy", "percentile")},
                group="deployment",
            ),
        ),
        flag_targets=(("seeds", ("quantize.seeds",)),),
        section=("quantize", QuantizeConfig),
        run_folder="existing",
        check_folder="pipeline.quantize_stage:check_folder",
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
    ),
    Stage("reports", "Pareto plots, CSV and LaTeX tables from a run folder"),
    Stage("full", "everything above in order"),
    Stage(
        "latency-table",
        "collect this device's latency lookup table (--device-name NAME)",
        run="pipeline.latency_stage:run_latency_table",
        summary="pipeline.latency_stage:table_summary",
        flags=(*_LATENCY_READS, "max_minutes"),
    ),
    Stage(
        "validate-latency",
        "measure random specs here and compare with a table's predictions",
        run="pipeline.latency_stage:run_validate_latency",
        summary="pipeline.latency_stage:validation_summary",
        flags=(*_LATENCY_READS, "n", "strict"),
    ),
)

DEFAULT_MODE = "nas"


def get_stage(mode: str) -> Stage:
    """The registered stage of ``mode`` (argparse has already checked the name)."""
    return next(s for s in STAGES if s.mode == mode)


def stage_sections() -> dict[str, type]:
    """Config sections owned by stages, in registry order."""
    return dict(s.section for s in STAGES if s.section is not None)
