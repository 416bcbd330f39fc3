"""The notebook API: the stages of the CLI as methods, on one run folder. The CLI itself runs through it.

Example:
    >>> from pipeline.api import Pipeline
    >>> pipe = Pipeline({"baseline": {"models": ["dscnn"]}, "train": {"epochs": 1}}, out="runs/demo")
    >>> table = pipe.train_baseline()          # a pandas DataFrame (baseline_results.csv)
    >>> table[["model", "test_accuracy_mean"]]

Every method runs the registered stage exactly as ``--mode`` does (run-folder checks, the
resolved ``config.json``, the stage log ``stages.jsonl``) and returns a plain result: a
DataFrame where the stage writes a table, the stage's own result object otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import UserError
from common.stage_log import StageLog
from pipeline.config import PipelineConfig, build_config
from pipeline.run_folder import (
    SHARED_SECTIONS,
    prepare_run_folder,
    read_run_config,
    record_config,
    run_folder_config,
)
from pipeline.stages import get_stage


class Pipeline:
    """One run folder and its resolved config, with one method per stage.

    Args:
        config: A :data:`pipeline.config.PipelineConfig` (used as it is), a nested mapping of
            config sections or the path of a YAML/TOML/JSON config file (laid over the run folder's
            ``config.json`` when ``out`` holds one, as ``--mode quantization --out RUN`` does), or
            None (that ``config.json``, or the defaults).
        out: The run folder. Give it to keep every stage in one folder: without it each stage uses
            its own default ``runs/<dataset>-<mode>``, as on the command line.
    """

    def __init__(self, config: PipelineConfig | Mapping[str, Any] | str | Path | None = None,
                 out: str | Path | None = None) -> None:  # fmt: skip
        self.out = None if out is None else Path(out)
        base = read_run_config(self.out) if self.out is not None and not isinstance(config, PipelineConfig) else {}
        if isinstance(config, PipelineConfig):
            self.config = config
        elif isinstance(config, (str, Path)):
            self.config = build_config(config, {}, base=base)
        else:
            self.config = build_config(None, dict(config or {}), base=base)

    def run_stage(self, mode: str, resume: bool = False, **options: Any) -> tuple[Any, Path | None]:
        """Run one stage as ``--mode`` does; returns its raw result and the run folder it used.

        ``options`` go to the stage function (``--mode full`` gives the search its share of the
        whole-run budget this way).

        Raises:
            UserError: An unbuilt mode, a refused run folder, or any error the stage reports.
        """
        stage = get_stage(mode)
        if not stage.built:
            raise UserError(f"--mode {mode} is not built yet")
        out = None if self.out is None else str(self.out)
        if stage.run_folder == "existing":
            run_folder_config(stage, out)  # the same checks as the CLI (it needs --out)
        resolve = stage.function("resolve")
        if resolve is not None:
            self.config = resolve(self.config)
        run_dir = prepare_run_folder(stage, self.config, out, resume)
        if run_dir is None or stage.run_folder == "none":
            return stage.function("run")(self.config, run_dir, resume, **options), run_dir
        log, config = StageLog(run_dir), self.config.to_dict()
        started = log.start(mode, config, resume)
        try:
            result = stage.function("run")(self.config, run_dir, resume, **options)
        except (UserError, KeyboardInterrupt) as exc:
            log.failed(mode, started, str(exc) or type(exc).__name__)
            raise
        record_config(run_dir, self.config, stage.recorded_sections(SHARED_SECTIONS))
        log.end(mode, config, started, _stopped_short(result))
        return result, run_dir

    def summary(self, mode: str, result: Any, run_dir: Path | None) -> list[str]:
        """The lines ``--mode`` prints after the stage."""
        function = get_stage(mode).function("summary")
        return function(result, run_dir) if function else []

    # -- one method per stage ----------------------------------------------------------------

    def prepare_features(self) -> Any:
        """``--mode features``: the cached, split, normalised features (a :class:`train.feature_set.Features`)."""
        return self.run_stage("features")[0].features

    def train_baseline(self, resume: bool = False) -> pd.DataFrame:
        """``--mode baseline``: ``baseline_results.csv`` as a DataFrame (one row per baseline)."""
        _, run_dir = self.run_stage("baseline", resume)
        return pd.read_csv(run_dir / "baseline_results.csv")

    def run_nas(self, resume: bool = False):
        """``--mode nas``: the :class:`nas.result.SearchResult` (``.pareto`` rows, ``.history``)."""
        return self.run_stage("nas", resume)[0]

    def quantize_models(self, resume: bool = False) -> pd.DataFrame:
        """``--mode quantization``: ``quantization_results.csv`` as a DataFrame (one row per model x variant)."""
        _, run_dir = self.run_stage("quantization", resume)
        return pd.read_csv(run_dir / "quantization_results.csv")

    def generate_reports(self):
        """``--mode reports``: the :class:`reports.generate.ReportResult` (figures, tables, HTML page)."""
        return self.run_stage("reports")[0]

    def run_all(self, resume: bool = False):
        """``--mode full``: every stage in order into one run folder (see :mod:`pipeline.full_stage`)."""
        return self.run_stage("full", resume)[0]

    def predict(self, model: str | Path, inputs: list[str | Path]) -> pd.DataFrame:
        """``--mode predict``: label and probability per file (skipped files with their reason)."""
        import dataclasses

        predict = dataclasses.replace(self.config.predict, model=str(model), inputs=tuple(str(p) for p in inputs))
        pipe = Pipeline(dataclasses.replace(self.config, predict=predict), out=None)
        result, _ = pipe.run_stage("predict")
        skipped = [{"path": p, "label": None, "probability": None, "skipped_reason": r} for p, r in result.skipped]
        return pd.DataFrame([*result.rows, *skipped])


def _stopped_short(result: Any) -> str | None:
    """What the stage log notes for a result that stopped before its end (a search stopped by its time budget)."""
    if getattr(result, "completed", True) is not False:
        return None
    cut = getattr(result, "partial_generation", None)
    if cut is not None:
        return (f"stopped by the time budget in generation {cut['generation']} ({cut['finished']} of "
                f"{cut['proposed']} candidates recorded); --resume continues")  # fmt: skip
    history = getattr(result, "history", None) or [{}]
    return f"stopped by the time budget after generation {history[-1].get('generation', '?')}; --resume continues"
