"""A device kit: everything a device with only Python, numpy and onnxruntime needs to time a latency table.

``write_kit`` writes a folder (``--mode latency-kit``):

* ``manifest.json``: the kit's id and format, device name, space, input shape, classes,
  precision, threads, timing settings, the tool version, and one entry per graph (key, kind
  ``op``/``reference``/``calibration``/``validation``, file, reference key, which boundaries to strip);
* ``graphs/``: every op-in-context graph and its reference, UNOPTIMISED (ORT's optimised graph
  depends on the device's CPU, so the device optimises and strips them itself), the whole models
  for the calibration and the validation, and the channel-block probe; large weights point into
  the shared ``graphs/weights.bin`` (:mod:`latency_tables.kit_graphs`);
* ``onnx_descriptor.bin`` (``onnx-ml.proto``, serialized) and ``time_ops.py``
  (:mod:`latency_tables.kit_script`, verbatim), which reads the graphs without the onnx package;
* ``README.txt``: the three commands.

The device writes ``results/`` into the kit; :mod:`latency_tables.kit_import` builds the table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import onnx.onnx_ml_pb2
import onnxruntime as ort

from common.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, make_temp_folder
from common.errors import UserError
from common.progress import progress as progress_bar
from common.version import tool_source
from latency_tables.config import LatencyConfig
from latency_tables.int8_graphs import qdq_graph
from latency_tables.keys import OpKey, space_ops
from latency_tables.kit_graphs import (
    WEIGHTS_FILE,
    externalize,
    probe_graph,
    spread_by_macs,
    validation_specs,
    weights_bytes,
)
from latency_tables.kit_script import KIT_FORMAT_VERSION
from latency_tables.layout import export_onnx
from latency_tables.onnx_graphs import context_graphs
from latency_tables.precision import deployed_graph
from search_spaces import ArchSpec, create_search_space

SCRIPT = Path(__file__).resolve().parent / "kit_script.py"
README = """Latency kit '{device}' ({precision}, {space}, input {shape}, {threads} thread(s)): {n_graphs} graphs.

On the device (Python 3.8+, nothing of this project needed):
  1. pip install onnxruntime numpy
  2. cd into this folder, then: python time_ops.py [--max-minutes M]
     (resumable: run it again after an interruption or a time budget; it never times a graph twice)
Back on the host, with results/ inside this folder:
  3. python complete_pipeline.py --mode latency-import --kit-dir THIS_FOLDER [--tables-dir DIR]
"""


@dataclass(frozen=True)
class KitReport:
    """What a written kit holds."""

    kit_dir: Path
    kit_id: str
    precision: str
    n_ops: int
    n_references: int
    n_calibration: int
    n_validation: int
    size_bytes: int
    write_s: float


def write_kit(
    cfg: LatencyConfig,
    device: str,
    input_shape: tuple[int, ...],
    out_dir: Path,
    ops: list[OpKey] | None = None,
    progress: bool = True,
    specs: dict[str, list[ArchSpec]] | None = None,
) -> KitReport:
    """Write the kit for ``device`` into ``out_dir`` (which must not exist yet, or be empty).

    Args:
        cfg: Space, classes, precision, timing, calibration size, validation size and seed.
        device: Name of the device (the imported table's file stem).
        input_shape: Per-example model input shape, e.g. (1, 40, 101).
        out_dir: The kit folder.
        ops: Only these ops instead of every op of the space (tests, top-ups).
        progress: Show a progress bar.
        specs: Whole models to ship instead of the default sample, per kind (``calibration``,
            ``validation``; tests).

    Returns:
        What was written, its size and the time it took.

    Raises:
        UserError: ``out_dir`` exists and is not an empty folder.
    """
    start = time.monotonic()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"kit folder {out_dir} already exists and is not empty; choose another --kit-dir or delete it")
    precision = cfg.collect_precision
    if ops is None:
        ops = list(space_ops(create_search_space(cfg.space), cfg.n_classes, input_shape))
    ops = sorted(set(ops), key=lambda o: o.key)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_folder(out_dir.parent, f".{out_dir.name}-partial-")
    try:
        graphs_dir = tmp / "graphs"
        graphs_dir.mkdir()
        entries, largest = _write_ops(ops, precision, graphs_dir, progress)
        models, model_largest = _write_models(cfg, input_shape, precision, graphs_dir, progress, specs)
        entries += models
        atomic_write_bytes(graphs_dir / "probe.onnx", probe_graph())
        atomic_write_bytes(graphs_dir / WEIGHTS_FILE, weights_bytes(max(largest, model_largest, 4), cfg.seed))
        _check_loads(tmp, entries)
        atomic_write_bytes(tmp / "onnx_descriptor.bin", onnx.onnx_ml_pb2.DESCRIPTOR.serialized_pb)
        shutil.copyfile(SCRIPT, tmp / "time_ops.py")
        kit_id = uuid.uuid4().hex
        manifest = {
            "format_version": KIT_FORMAT_VERSION,
            "kit_id": kit_id,
            "device_name": device,
            "space": cfg.space,
            "input_shape": list(input_shape),
            "n_classes": cfg.n_classes,
            "precision": precision,
            "threads": cfg.timing.threads,
            "timing": dataclasses.asdict(cfg.timing),
            "seed": cfg.seed,
            "calibration_models": cfg.calibration_models,
            "validate_n": cfg.validate_n,
            "probe": "graphs/probe.onnx",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host_onnxruntime": ort.__version__,
            "tool": tool_source(),
            "graphs": entries,
        }
        n_graphs = len(entries)
        atomic_write_text(tmp / "README.txt", README.format(device=device, precision=precision, space=cfg.space,
                          shape=tuple(input_shape), threads=cfg.timing.threads, n_graphs=n_graphs))  # fmt: skip
        atomic_write_json(tmp / "manifest.json", manifest, indent=None)
        if out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    kinds = [e["kind"] for e in entries]
    return KitReport(out_dir, kit_id, precision, kinds.count("op"), kinds.count("reference"),
                     kinds.count("calibration"), kinds.count("validation"), size, time.monotonic() - start)  # fmt: skip


def _write_ops(ops: list[OpKey], precision: str, graphs_dir: Path, progress: bool) -> tuple[list[dict], int]:
    """Every op's graph and, once per context, its reference; manifest entries and the largest external weight."""
    entries: list[dict] = []
    refs: set[str] = set()
    largest = 0
    for op in progress_bar(ops, desc="kit op graphs", unit="op", disable=not progress):
        model, ref_key, ref = context_graphs(op)
        graphs = [("op", op.key, model, op.kind != "stem", op.kind != "head")]
        if ref_key and ref is not None and ref_key not in refs:
            refs.add(ref_key)
            graphs.append(("reference", ref_key, ref, True, True))
        for kind, key, graph, strip_in, strip_out in graphs:
            data, size = externalize(qdq_graph(graph) if precision == "int8" else graph)
            largest = max(largest, size)
            name = f"{'op_' if kind == 'op' else ''}{key}.onnx"
            (graphs_dir / name).write_bytes(data)
            entry = {"key": key, "kind": kind, "file": f"graphs/{name}", "reference": ref_key if kind == "op" else None,
                     "strip_inputs": strip_in, "strip_outputs": strip_out}  # fmt: skip
            if kind == "op":
                entry["op_kind"] = op.kind
            entries.append(entry)
    return entries, largest


def _write_models(cfg: LatencyConfig, input_shape: tuple[int, ...], precision: str, graphs_dir: Path,
                  progress: bool, specs: dict[str, list[ArchSpec]] | None) -> tuple[list[dict], int]:  # fmt: skip
    """The calibration models (spread by MACs) and validation models (validate-latency's sample), as deployed."""
    space = create_search_space(cfg.space)
    shape = tuple(input_shape)
    groups = dict(specs or {})
    if "calibration" not in groups:
        n = cfg.calibration_models
        groups["calibration"] = spread_by_macs(cfg.space, n, cfg.seed, cfg.n_classes, shape) if n else []
    if "validation" not in groups:
        groups["validation"] = validation_specs(cfg.space, cfg.validate_n, cfg.seed, cfg.n_classes, shape)
    entries, largest = [], 0
    for kind, specs in groups.items():
        for i, spec in enumerate(progress_bar(specs, desc=f"kit {kind} models", unit="model", disable=not progress)):
            graph = deployed_graph(export_onnx(space.build(spec, cfg.n_classes, shape), shape), precision)
            data, size = externalize(graph)
            largest = max(largest, size)
            name = f"{kind[:3]}_{i:04d}.onnx"
            (graphs_dir / name).write_bytes(data)
            entries.append({"key": str(spec), "kind": kind, "file": f"graphs/{name}", "reference": None})
    return entries, largest


def _check_loads(kit: Path, entries: list[dict]) -> None:
    """ORT loads the first graph of each kind from its path, its weights from the shared file."""
    seen: set[str] = set()
    for entry in entries:
        if entry["kind"] not in seen:
            seen.add(entry["kind"])
            ort.InferenceSession(str(kit / entry["file"]), providers=["CPUExecutionProvider"])


def kit_summary(report: KitReport) -> str:
    """One line: what the kit holds, its size and the time it took."""
    return (
        f"kit {report.kit_dir}: {report.n_ops} ops, {report.n_references} references, {report.n_calibration} "
        f"calibration and {report.n_validation} validation models ({report.precision}), "
        f"{report.size_bytes / 1e6:.1f} MB, written in {report.write_s:.0f} s"
    )


def read_manifest(kit_dir: Path) -> dict:
    """The manifest of a kit folder.

    Raises:
        UserError: No kit there, or a manifest that is not JSON.
    """
    path = kit_dir / "manifest.json"
    if not path.is_file():
        raise UserError(f"{kit_dir} is not a latency kit folder (expected manifest.json from --mode latency-kit)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not a kit manifest (expected JSON): {exc}") from None
