"""Where the numbers come from: tool version and commit, packages, latency tables, data, seeds, config hash, times.

Two environments are kept apart: the one that *made the run* (as the run folder recorded it: the
versions in ``nas/search.json``, the machine in ``quantization_results.json``) and the one that
*made this report* (installed packages, the tool's git commit). No absolute path is written, so a
report made from a copied folder says the same as one made in place.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from common.hashing import stable_hash
from common.stage_log import LOG_NAME, StageLog
from common.version import git_commit
from latency_tables.locations import SHIPPED_TABLES, TABLES_ENV, user_tables_dir
from reports.run_data import RunData
from reports.run_files import read_json

TOOL = "edge-audio-nas"
PACKAGES = ("numpy", "pandas", "matplotlib", "seaborn", "scipy", "deap", "moocore", "torch", "onnx", "onnxruntime")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages the tool's results depend on (None where not installed)."""
    versions: dict[str, str | None] = {}
    for name in (TOOL, *PACKAGES):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _tables_dirs(run: RunData) -> list[tuple[Path, str]]:
    """Folders that may hold the run's tables, with how to name each in the report (no absolute paths)."""
    dirs = [(Path(p).expanduser(), f"${TABLES_ENV}") for p in os.environ.get(TABLES_ENV, "").split(os.pathsep) if p]
    own = (run.config.get("latency") or {}).get("tables_dir")
    if own:
        dirs.insert(0, (Path(own).expanduser(), "latency.tables_dir of the run's config"))
    return [*dirs, (user_tables_dir(), "the user tables folder"), (SHIPPED_TABLES, f"shipped with {TOOL}")]


def latency_tables_used(run: RunData) -> list[dict[str, Any]]:
    """Metadata of every latency table the run used (search devices and the quantization's table device)."""
    names = list(run.search.devices) if run.search else []
    if run.quantization is not None and "table_device" in run.quantization:
        names += [str(d) for d in run.quantization["table_device"].dropna().unique()]
    out = []
    for name in dict.fromkeys(names):
        entry: dict[str, Any] = {"name": name, "fingerprint_in_run": (run.search.device_fingerprints.get(name)
                                                                      if run.search else None)}  # fmt: skip
        for folder, where in _tables_dirs(run):
            meta = read_json(folder / f"{name}.json", [])
            if meta is not None:
                calibration = meta.get("calibration") or {}
                entry |= {
                    "found": where, "device": meta.get("device"), "created": meta.get("created"),
                    "method": meta.get("method"), "threads": meta.get("threads"), "timing": meta.get("timing"),
                    "space": meta.get("space"), "input_shape": meta.get("input_shape"),
                    "calibration": {k: calibration.get(k) for k in ("scale", "offset_ms", "n_models", "fitted")},
                    "collection": {k: (meta.get("collection") or {}).get(k) for k in ("measured", "n_ops", "updated")},
                }  # fmt: skip
                break
        else:
            entry["found"] = None
            entry["note"] = "table files not found on the machine that made this report"
        out.append(entry)
    return out


def _run_times(run: RunData) -> dict[str, Any]:
    """Times the folder records: per stage (``stages.jsonl``), the search's evaluations, training and measuring."""
    finished = sorted(str(r.provenance.get("finished_at")) for r in run.records if r.provenance.get("finished_at"))
    times: dict[str, Any] = {
        "search_first_evaluation_finished": finished[0] if finished else None,
        "search_last_evaluation_finished": finished[-1] if finished else None,
        "search_wall_s": None,
        "training_wall_s": None,
        "quantization_measurement_wall_s": None,
    }
    if run.history is not None and "elapsed_s" in run.history and run.history["elapsed_s"].notna().any():
        times["search_wall_s"] = float(run.history["elapsed_s"].dropna().iloc[-1])
    walls = []
    for path in sorted((run.run_dir / "models").glob("**/run.json")):
        wall = ((read_json(path, []) or {}).get("train") or {}).get("wall_s")
        if isinstance(wall, (int, float)):
            walls.append(float(wall))
    times["training_wall_s"] = sum(walls) if walls else None
    stages = StageLog(run.run_dir).records() if (run.run_dir / LOG_NAME).is_file() else {}
    times["stages"] = {mode: {"started": r.started, "ended": r.ended, "wall_s": r.wall_s, "finished": r.finished,
                              "tool": r.tool,
                              "failed": r.failed, "config_hash": r.config_hash}
                       for mode, r in stages.items()}  # fmt: skip
    if not stages:
        times["stages"] = None
    variants = (run.quantization_meta or {}).get("variants") or []
    walls = [float(v["wall_s"]) for v in variants if isinstance(v.get("wall_s"), (int, float))]
    times["quantization_measurement_wall_s"] = sum(walls) if walls else None
    return times


def _seeds(run: RunData) -> dict[str, Any]:
    config = run.config
    per_model = {}
    for frame in (run.baselines, run.training):
        if frame is not None and {"model", "seeds"} <= set(frame.columns):
            per_model |= {str(m): int(s) for m, s in zip(frame["model"], frame["seeds"], strict=True)}
    return {
        "run_seed": (config.get("run") or {}).get("seed"),
        "search_seed": run.search.seed if run.search else None,
        "baseline_seeds": (config.get("baseline") or {}).get("seeds"),
        "quantization_seeds": (config.get("quantize") or {}).get("seeds"),
        "seeds_per_model": per_model,
    }


def _data(run: RunData) -> dict[str, Any]:
    summary = run.summary or {}
    return {
        "dataset": run.dataset,
        "split_protocol": run.split_protocol,
        "split_sizes": run.split_sizes,
        "classes": summary.get("classes"),
        "n_files": summary.get("n_files"),
        "n_skipped": summary.get("n_skipped"),
        "data_fingerprint": summary.get("data_fingerprint"),
        "features": summary.get("features") or run.config.get("features"),
    }


def _compared(run: RunData) -> dict[str, Any]:
    return {
        "folder": run.name,
        "strategy": run.search.strategy if run.search else None,
        "seed": run.search.seed if run.search else None,
        "config_hash": stable_hash(run.config) if run.config else None,
    }


def provenance(run: RunData, compare: list[RunData]) -> dict[str, Any]:
    """Everything needed to say where the report's numbers come from (plain JSON data)."""
    tool_dir = Path(__file__).resolve().parents[1]
    commit, dirty = git_commit(tool_dir)
    run_commit, run_dirty = git_commit(run.run_dir, tracked="config.json")
    versions = package_versions()
    describe_versions = None
    if (run.run_dir / "nas" / "search.json").is_file():
        data = read_json(run.run_dir / "nas" / "search.json", []) or {}
        describe_versions = (((data.get("settings") or {}).get("problem") or {}).get("describe") or {}).get("versions")
    return {
        "report": {
            "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "tool": TOOL,
            "tool_version": versions.pop(TOOL),
            "tool_git_commit": commit,
            "tool_git_dirty": dirty,
            "python": platform.python_version(),
            "packages": versions,
        },
        "run": {
            "folder": run.name,
            "run_folder_git_commit": run_commit,
            "run_folder_git_dirty": run_dirty,
            "config_hash": stable_hash(run.config) if run.config else None,
            "config_hash_of": "config.json as the folder holds it now (the config of the last mode run there; "
            "common.hashing.stable_hash, 16 hex digits); per-stage hashes are under times.stages",
            "strategy": run.search.strategy if run.search else None,
            "data": _data(run),
            "seeds": _seeds(run),
            "times": _run_times(run),
            "search_versions": describe_versions,
            "quantization_machine": run.machine,
        },
        "latency_tables": latency_tables_used(run),
        "compared_runs": [_compared(c) for c in compare],
    }
