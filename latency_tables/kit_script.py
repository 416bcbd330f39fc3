"""Time a latency kit on the device: ``python time_ops.py [--max-minutes M] [--threads N]`` in the kit folder.

Stand-alone by design: this file is copied verbatim into every kit (as ``time_ops.py``) and runs
on a device that has only Python (3.8 or newer), numpy and onnxruntime: no torch, no ``onnx``
package, no project. It therefore repeats, in a minimal form, what the project does in
``latency_tables/layout.py`` (ORT optimisation, stripping the boundary conversions an op does not
pay inside a network) and ``latency_tables/ort_timing.py`` (random feeds, the timing statistic);
the duplication is inherent to a script that must not import the project. ONNX files are read and
edited with message classes built at run time from the kit's ``onnx_descriptor.bin`` (the
serialized ``onnx-ml.proto`` descriptor), in a private descriptor pool so an installed ``onnx``
cannot clash.

What it does, in this order:

1. records the device (CPU model and flags, cores, versions, the runtime's channel block) in
   ``results/device.json``;
2. times the calibration models end to end (a dozen, about a second each), first, so that a run
   cut short by ``--max-minutes`` still leaves a table that imports calibrated: the import fits
   the calibration on the models the timed ops can predict (on a device that throttles when hot,
   a cold start can make these faster than the ops timed later: the validation passes show it);
3. times every op graph of the manifest in a seeded shuffled order, each behind its reference
   (the same context without the op), timed once when first needed and once more if an op came
   out faster than it (a whole model cannot beat its own context alone);
4. times the validation models in two passes (A, B).

Every measured graph is one row of ``results/timings.csv`` (kind, key, pass, model_ms, runs,
spread_pct, wall_s), written through at once and fsynced at least every 2 s; a rerun drops a torn
last line and never measures a row's graph again, so a killed or time-boxed run just continues.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

INSTALL = "pip install onnxruntime numpy"
try:
    import numpy as np
    import onnxruntime as ort
    from google.protobuf import descriptor_pool, message_factory
except ImportError as _missing:  # the one thing a bare device may lack
    print(f"time_ops.py needs numpy and onnxruntime ({_missing.name} is missing); install them: {INSTALL}",
          file=sys.stderr)  # fmt: skip
    sys.exit(2)

KIT_FORMAT_VERSION = 1
COLUMNS = ["kind", "key", "pass", "model_ms", "runs", "spread_pct", "wall_s"]
FSYNC_EVERY_S = 2.0
PROGRESS_EVERY_S = 10.0
BOUNDARY_IN = ("ReorderInput", "QuantizeLinear", "Transpose")
BOUNDARY_OUT = ("ReorderOutput", "Transpose", "DequantizeLinear")
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
ELEM_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7, "float16": 10}
INTEGER_INPUTS = {"tensor(uint8)": np.uint8, "tensor(int8)": np.int8}
OPT_LEVELS = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "neon", "asimd", "asimddp")


class KitError(Exception):
    """A problem the user can fix; printed as one line (exit code 2)."""


# ---------------------------------------------------------------- ONNX messages without the onnx package


class Onnx:
    """ONNX message classes built from the kit's serialized ``onnx-ml.proto`` descriptor."""

    def __init__(self, descriptor_path: Path) -> None:
        pool = descriptor_pool.DescriptorPool()  # private: never clashes with an installed onnx
        data = descriptor_path.read_bytes()
        if hasattr(pool, "AddSerializedFile"):
            pool.AddSerializedFile(data)
        else:  # very old protobuf
            from google.protobuf import descriptor_pb2

            pool.Add(descriptor_pb2.FileDescriptorProto.FromString(data))
        self.ModelProto = _message_class(pool, "onnx.ModelProto")
        self.ValueInfoProto = _message_class(pool, "onnx.ValueInfoProto")

    def value_info(self, name: str, elem_type: int, shape: list | None):
        """A tensor ``ValueInfoProto`` (no shape field when ``shape`` is None), like ``onnx.helper``'s."""
        info = self.ValueInfoProto()
        info.name = name
        tensor = info.type.tensor_type
        tensor.elem_type = elem_type
        if shape is not None:
            tensor.shape.SetInParent()
            for dim in shape:
                tensor.shape.dim.add().dim_value = int(dim)
        return info


def _message_class(pool, full_name: str):
    descriptor = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)  # protobuf < 4.21


# ---------------------------------------------------------------- preparing a graph as it runs inside a network


def session_options(threads: int, optimization: str) -> ort.SessionOptions:
    """Fixed threads, sequential execution, the given graph optimisation (as ``ort_timing.session_options``)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = OPT_LEVELS[optimization]
    so.log_severity_level = 3
    return so


def make_session(model, threads: int, optimization: str) -> ort.InferenceSession:
    """A CPU session for serialized bytes or a model path."""
    return ort.InferenceSession(model, session_options(threads, optimization), providers=["CPUExecutionProvider"])


def optimized(onnx: Onnx, path: Path):
    """The graph ORT runs for the model at ``path`` on this CPU (``ORT_ENABLE_ALL``), weights inline."""
    with tempfile.TemporaryDirectory(prefix="time-ops-") as tmp:
        so = session_options(1, "all")
        so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        model = onnx.ModelProto.FromString(Path(so.optimized_model_filepath).read_bytes())
    for init in model.graph.initializer:  # ORT may keep a tensor it did not touch in the kit's weights file
        if init.data_location == EXTERNAL:
            info = {e.key: e.value for e in init.external_data}
            with open(path.parent / info["location"], "rb") as f:
                f.seek(int(info.get("offset", 0)))
                init.raw_data = f.read(int(info["length"]))
            del init.external_data[:]
            init.data_location = 0
    return model


def strip_boundaries(onnx: Onnx, model, inputs: bool, outputs: bool):
    """Remove the boundary conversions an op inside a network does not pay (``layout.strip_boundaries``).

    ReorderInput/QuantizeLinear/Transpose chains at graph inputs (``inputs``), ReorderOutput/
    Transpose/DequantizeLinear chains at graph outputs (``outputs``); ``model`` is edited in place.
    """
    graph = model.graph
    while inputs:
        names = {i.name: i for i in graph.input}
        heads = [n for n in graph.node if n.op_type in BOUNDARY_IN and n.input[0] in names
                 and sum(n.input[0] in other.input for other in graph.node) == 1]  # fmt: skip
        if not heads:
            break
        made = _probe(onnx, model, heads)
        for node in heads:
            graph.input.remove(names[node.input[0]])
            elem, shape = made[node.output[0]]
            graph.input.add().CopyFrom(onnx.value_info(node.output[0], elem, shape))
            graph.node.remove(node)
    while outputs:
        names = {o.name: o for o in graph.output}
        tails = [n for n in graph.node if n.op_type in BOUNDARY_OUT and n.output[0] in names]
        if not tails:
            break
        for node in tails:
            elem = names[node.output[0]].type.tensor_type.elem_type
            if node.op_type == "DequantizeLinear":
                elem = _zero_point_type(graph, node)
            graph.output.remove(names[node.output[0]])
            graph.output.add().CopyFrom(onnx.value_info(node.input[0], elem, None))
            graph.node.remove(node)
    used = {name for n in graph.node for name in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return model


def _zero_point_type(graph, node) -> int:
    """The 8-bit type of a (De)QuantizeLinear: its zero point's (uint8 without one, as in ONNX)."""
    if len(node.input) > 2:
        for init in graph.initializer:
            if init.name == node.input[2]:
                return init.data_type
    return ELEM_TYPES["uint8"]


def _probe(onnx: Onnx, model, nodes) -> dict:
    """(element type, shape) of what the boundary input nodes make, from one run of a graph of just them."""
    names = {n.input[0] for n in nodes}
    wanted = {name for n in nodes for name in n.input[1:]}
    probe = onnx.ModelProto()
    probe.ir_version = model.ir_version
    probe.opset_import.extend(model.opset_import)
    probe.graph.name = "probe"
    probe.graph.node.extend(nodes)
    types = {}
    for graph_input in model.graph.input:
        if graph_input.name in names:
            probe.graph.input.add().CopyFrom(graph_input)
            types[graph_input.name] = graph_input.type.tensor_type.elem_type
    for node in nodes:
        elem = _zero_point_type(model.graph, node) if node.op_type == "QuantizeLinear" else types[node.input[0]]
        probe.graph.output.add().CopyFrom(onnx.value_info(node.output[0], elem, None))
    probe.graph.initializer.extend(i for i in model.graph.initializer if i.name in wanted)
    session = make_session(probe.SerializeToString(), 1, "disable")
    values = session.run([n.output[0] for n in nodes], random_feeds(session))
    return {n.output[0]: (ELEM_TYPES[str(v.dtype)], list(v.shape)) for n, v in zip(nodes, values)}  # noqa: B905 (Python < 3.10 too)


def prepare(onnx: Onnx, path: Path, strip_inputs: bool, strip_outputs: bool) -> bytes:
    """An op graph optimised here, boundary conversions stripped (run it with optimisation disabled)."""
    return strip_boundaries(onnx, optimized(onnx, path), strip_inputs, strip_outputs).SerializeToString()


def channel_block(onnx: Onnx, probe_path: Path) -> int:
    """The runtime's channel block here (16: AVX-512, 8: AVX2, 1: none), as ``layout.channel_block_size``."""
    model = onnx.ModelProto.FromString(prepare(onnx, probe_path, True, True))
    first = model.graph.input[0]
    if first.name == "input":
        return 1
    return first.type.tensor_type.shape.dim[1].dim_value - 32


# ---------------------------------------------------------------- timing (as ort_timing.time_model)


def random_feeds(session: ort.InferenceSession, seed: int = 0) -> dict:
    """Random inputs of the session's static shapes: float32, or uint8/int8 for INT8 graphs."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        integer = INTEGER_INPUTS.get(inp.type)
        if integer is not None:
            info = np.iinfo(integer)
            feeds[inp.name] = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(integer)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _run_times_ms(session: ort.InferenceSession, feeds: dict, warmup: int, runs: int) -> np.ndarray:
    for _ in range(warmup):
        session.run(None, feeds)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        times[i] = time.perf_counter_ns() - start
    return times / 1e6


def plan(timing: dict, estimate_ms: float) -> tuple:
    """(warm-up runs, timed runs) for a graph of about ``estimate_ms`` (``TimingConfig.plan``)."""
    runs = int(min(timing["runs"], max(timing["min_runs"], round(timing["target_ms"] / max(estimate_ms, 1e-4)))))
    return min(timing["warmup"], max(1, runs // 5)), runs


def time_model(model, timing: dict, optimization: str) -> list:
    """Per-session medians (ms) over ``timing["sessions"]`` fresh sessions; the latency is their minimum."""
    medians = []
    for s in range(timing["sessions"]):
        session = make_session(model, timing["threads"], optimization)
        feeds = random_feeds(session, seed=s)
        warmup, runs = plan(timing, float(_run_times_ms(session, feeds, 0, 1)[0]))
        medians.append(float(np.median(_run_times_ms(session, feeds, warmup, runs))))
        del session
    return medians


def end_to_end(timing: dict) -> dict:
    """Whole models: at least 50 timed runs per session (``TimingConfig.end_to_end``)."""
    return dict(timing, runs=max(timing["runs"], 50), min_runs=max(timing["min_runs"], 50))


# ---------------------------------------------------------------- device facts


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list:
    """Vector-instruction flags that change kernel choices (AVX2/AVX-512/VNNI/NEON), if known."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [f for f in CPU_FLAGS if f in present]
    return []


def device_facts() -> dict:
    """The fields the project's ``device_info.device_metadata`` records (no onnx or torch here), plus numpy."""
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnx": None,
        "torch": None,
        "numpy": np.__version__,
    }


# ---------------------------------------------------------------- the results file


def read_done(path: Path) -> list:
    """Rows measured so far; a torn last line (a write cut short by a kill) is cut off the file first."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        print(f"time_ops: dropped a torn last line of {path.name} ({len(data) - cut} bytes)", flush=True)
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


class Journal:
    """``results/timings.csv`` open for appending: one write per row, fsync at most every 2 s and on close."""

    def __init__(self, path: Path) -> None:
        new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 (closed in close())
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._synced = time.monotonic()
        if new:
            self.append(COLUMNS)

    def append(self, row: list) -> None:
        """Write one row through to the OS (fsync when the last is :data:`FSYNC_EVERY_S` old)."""
        self._writer.writerow(row)
        self._file.flush()
        if time.monotonic() - self._synced >= FSYNC_EVERY_S:
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        """Flush, fsync, close."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def row(kind: str, key: str, pass_: str, medians: list, wall_s: float) -> list:
    """A results row: the minimum of the session medians, the sessions, their spread in percent."""
    spread = round(100 * (max(medians) / min(medians) - 1), 2)
    return [kind, key, pass_, round(min(medians), 6), len(medians), spread, round(wall_s, 3)]


# ---------------------------------------------------------------- the run


class Run:
    """One run of the kit: what is left to time, the budget and the progress line."""

    def __init__(self, kit: Path, manifest: dict, timing: dict, deadline: float | None) -> None:
        self.kit, self.manifest, self.timing, self.deadline = kit, manifest, timing, deadline
        self.onnx = Onnx(kit / "onnx_descriptor.bin")
        self.results = kit / "results"
        done = read_done(self.results / "timings.csv")
        self.done = {(r["kind"], r["key"], r["pass"]) for r in done}
        self.refs = {}  # reference key -> lowest time so far
        self.ref_rows = {}  # reference key -> rows (2: re-timed)
        self.op_ms = {}  # op key -> (model ms, reference key)
        for r in done:
            if r["kind"] == "reference":
                self.refs[r["key"]] = min(self.refs.get(r["key"], math.inf), float(r["model_ms"]))
                self.ref_rows[r["key"]] = self.ref_rows.get(r["key"], 0) + 1
        self.graphs = {(g["kind"], g["key"]): g for g in manifest["graphs"]}
        for r in done:
            if r["kind"] == "op" and ("op", r["key"]) in self.graphs:
                self.op_ms[r["key"]] = (float(r["model_ms"]), self.graphs[("op", r["key"])]["reference"])
        self.todo = self._plan()
        self.total, self.measured, self.start, self.shown = len(self.todo), 0, time.monotonic(), time.monotonic()
        self.failed = []

    def _plan(self) -> list:
        """(kind, key, pass) left to time: calibration, ops shuffled (seeded), validation pass A, then B."""
        ops = sorted(g["key"] for g in self.manifest["graphs"] if g["kind"] == "op")
        random.Random(self.manifest["seed"]).shuffle(ops)
        todo = [("calibration", g["key"], "") for g in self.manifest["graphs"] if g["kind"] == "calibration"]
        todo += [("op", k, "") for k in ops]
        validation = [g["key"] for g in self.manifest["graphs"] if g["kind"] == "validation"]
        todo += [("validation", k, p) for p in ("A", "B") for k in validation]
        return [t for t in todo if t not in self.done]

    def out_of_time(self) -> bool:
        """Whether the time budget is spent."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def measure(self, journal: Journal) -> None:
        """Time everything left (or until the budget is spent), writing each row as it comes."""
        for ref_key in self._suspects():  # an op beat its reference, and a kill came before the re-timing
            self._guarded(journal, "reference", ref_key, "")
        for kind, key, pass_ in self.todo:
            if self.out_of_time():
                break
            self._guarded(journal, kind, key, pass_)
            self.measured += 1
            self._progress()

    def _guarded(self, journal: Journal, kind: str, key: str, pass_: str) -> None:
        """Time one graph; one this runtime cannot run is recorded (and tried again next run), never fatal."""
        try:
            if kind == "reference":
                self._time_reference(journal, key)
            else:
                self._measure_one(journal, kind, key, pass_)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            self.failed.append([key, reason])
            print(f"time_ops: {kind} {key} failed: {reason}", flush=True)

    def _measure_one(self, journal: Journal, kind: str, key: str, pass_: str) -> None:
        graph = self.graphs[(kind, key)]
        path = self.kit / graph["file"]
        start = time.monotonic()
        if kind != "op":  # a whole model, fully optimised by ORT as deployed
            medians = time_model(str(path), end_to_end(self.timing), "all")
            journal.append(row(kind, key, pass_, medians, time.monotonic() - start))
            return
        ref_key = graph["reference"]
        if ref_key and ref_key not in self.refs:
            self._time_reference(journal, ref_key)
        start = time.monotonic()
        medians = time_model(prepare(self.onnx, path, graph["strip_inputs"], graph["strip_outputs"]), self.timing,
                             "disable")  # fmt: skip
        journal.append(row("op", key, "", medians, time.monotonic() - start))
        self.op_ms[key] = (min(medians), ref_key)
        if ref_key and min(medians) < self.refs[ref_key] and self.ref_rows.get(ref_key, 0) < 2:
            self._time_reference(journal, ref_key)

    def _time_reference(self, journal: Journal, ref_key: str) -> None:
        graph = self.graphs[("reference", ref_key)]
        start = time.monotonic()
        prepared = prepare(self.onnx, self.kit / graph["file"], graph["strip_inputs"], graph["strip_outputs"])
        medians = time_model(prepared, self.timing, "disable")
        journal.append(row("reference", ref_key, "", medians, time.monotonic() - start))
        self.refs[ref_key] = min(self.refs.get(ref_key, math.inf), min(medians))
        self.ref_rows[ref_key] = self.ref_rows.get(ref_key, 0) + 1

    def _suspects(self) -> list:
        return sorted({ref for ms, ref in self.op_ms.values()
                       if ref and ms < self.refs.get(ref, 0.0) and self.ref_rows.get(ref, 0) < 2})  # fmt: skip

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown < PROGRESS_EVERY_S:
            return
        self.shown = now
        elapsed = now - self.start
        left = self.total - self.measured
        eta = elapsed / max(self.measured, 1) * left
        print(f"time_ops: {self.measured}/{self.total} graphs ({100 * self.measured / max(self.total, 1):.1f}%), "
              f"{elapsed / 60:.1f} min, ETA {eta / 60:.1f} min", flush=True)  # fmt: skip


def write_device(run: Run, threads: int, block: int, wall_s: float | None = None) -> None:
    """``results/device.json``: this kit's identity, the device, its channel block, and the runs' bookkeeping.

    ``wall_s``: the seconds of the run that ends now (None: a run starts; nothing is added to ``runs``).
    """
    path = run.results / "device.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    facts = {key: run.manifest[key] for key in ("kit_id", "format_version", "device_name", "space", "input_shape",
                                                "n_classes", "precision")}  # fmt: skip
    facts.update(threads=threads, channel_block=block, timing=run.timing, device=device_facts())
    facts["started"] = old.get("started", now)
    facts["updated"] = now
    facts["runs"] = old.get("runs", [])
    if wall_s is not None:
        facts["runs"].append({"ended": now, "wall_s": round(wall_s, 1), "measured": run.measured})
    facts["failed"] = run.failed[:50]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(facts, indent=1))
    os.replace(tmp, path)


def check_resumable(results: Path, threads: int) -> None:
    """Refuse to add rows measured on another CPU, runtime or thread count than the rows already there."""
    path = results / "device.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    here = device_facts()
    fields = ("cpu_model", "machine", "onnxruntime")
    changed = [f"{f}: {old['device'].get(f)} vs now {here[f]}" for f in fields if old["device"].get(f) != here[f]]
    if old.get("threads") != threads:
        changed.append(f"threads: {old.get('threads')} vs now {threads}")
    if changed:
        raise KitError(f"{results} holds timings measured with other settings ({', '.join(changed)}); move "
                       "results/ away to start over")  # fmt: skip


def main(argv: list | None = None) -> int:
    """Time the kit this script lies in; returns the exit code."""
    parser = argparse.ArgumentParser(description="Time a latency kit's graphs on this device (resumable).")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="time budget of this run (0: none)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the kit's)")
    args = parser.parse_args(argv)
    kit = Path(__file__).resolve().parent
    try:
        manifest_path = kit / "manifest.json"
        if not manifest_path.is_file():
            raise KitError(f"{kit} holds no manifest.json: run time_ops.py from the kit folder it came in")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format_version") != KIT_FORMAT_VERSION:
            raise KitError(f"kit format {manifest.get('format_version')} needs its own time_ops.py "
                           f"(this one reads format {KIT_FORMAT_VERSION})")  # fmt: skip
        threads = args.threads or int(manifest["timing"]["threads"])
        if threads < 1:
            raise KitError(f"--threads must be >= 1, got {threads}")
        timing = dict(manifest["timing"], threads=threads)
        (kit / "results").mkdir(exist_ok=True)
        check_resumable(kit / "results", threads)
        deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes > 0 else None
        run = Run(kit, manifest, timing, deadline)
        block = channel_block(run.onnx, kit / manifest["probe"])
        write_device(run, threads, block)
        print(f"time_ops: {run.total} graphs to time ({len(run.done)} done before), {threads} thread(s), "
              f"channel block {block}", flush=True)  # fmt: skip
        journal = Journal(kit / "results" / "timings.csv")
        try:
            run.measure(journal)
        finally:
            journal.close()
            write_device(run, threads, block, time.monotonic() - run.start)
    except KitError as exc:
        print(f"time_ops: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("time_ops: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    left = run.total - run.measured + len(run.failed)
    if left:
        print(f"time_ops: stopped with {left} graph(s) left; run the same command again to continue", flush=True)
    else:
        print("time_ops: done; copy the results/ folder back beside the kit's manifest.json and run "
              "--mode latency-import", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
