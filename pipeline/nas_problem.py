"""The audio search problem: genomes of a search space, scored by proxy training and device latency.

Plugged into the generic engine in :mod:`nas` (which knows nothing of audio). ``precheck`` runs
in the search process and computes the cheap metrics (size, MACs, parameters, latency on every
device from its lookup table, or timed here); ``evaluate`` runs in a worker and trains the
candidate briefly on the train split, scoring it on the validation split (never the test split).
The object is plain data (paths and settings); workers load the cached features lazily, once per
process, and check that they are the data the search started on.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from common.errors import UserError
from common.hashing import seed_from_string
from latency_tables.layout import export_onnx
from latency_tables.ort_timing import TimingConfig, time_model
from latency_tables.registry import cached_table
from nas.problem import Constraint, ObjectiveSpec, SearchProblem
from search_spaces import ArchSpec, create_search_space, deployable_size_kb, int8_size_kb
from train.feature_set import Features, load_features
from train.train_config import TrainConfig

SIZE_DEFINITION = "fp32 weights after BatchNorm folding, KiB"  # journals made with another size_kb are refused
_FEATURES: dict[tuple[str, str], Features] = {}  # per worker process: (run folder, data fingerprint) -> features


def latency_metric(device: str) -> str:
    """Metric name of the latency on ``device``: ``latency_ms_<device>`` with non-identifier characters as ``_``."""
    return "latency_ms_" + re.sub(r"[^A-Za-z0-9_]", "_", device)


@dataclass(frozen=True)
class DeviceTable:
    """A device's table, identified by a fingerprint of what changes its predictions."""

    name: str
    csv_path: str
    fingerprint: str

    @classmethod
    def of(cls, table) -> DeviceTable:
        """From a loaded :class:`latency_tables.table.LatencyTable`."""
        return cls(table.name, str(table.path), table.fingerprint())


def _table_legend(csv_path: str) -> str:
    """What a table's latencies describe: precision, batch, threads and the CPU (for the column legends)."""
    from latency_tables.device_match import match_this_machine
    from latency_tables.registry import cached_table

    try:
        table = cached_table(csv_path)
    except (OSError, UserError, ValueError):
        return (
            "(models of a precision and thread count this run cannot tell), measured on a machine this run cannot "
            "tell (the table file is not readable here)"
        )
    precision = "INT8 (static QDQ, the project's recipe)" if table.precision == "int8" else table.precision
    return (f"({precision} models, batch 1, {table.meta.get('threads', 1)} thread(s)), measured on "
            f"{match_this_machine(table.meta).label()}")  # fmt: skip


@dataclass(frozen=True)
class AudioSettings:
    """Everything that decides a candidate's metrics (all of it is compared on resume, paths aside).

    Attributes:
        run_dir: Absolute run folder holding the features stage outputs.
        space: Search space name.
        input_shape: Per-example model input shape.
        n_classes: Number of classes.
        data: Fingerprint of the data (:attr:`train.feature_set.Features.fingerprint`).
        proxy: Training settings of the accuracy proxy (its seed is replaced per candidate).
        proxy_device: The device the proxy resolved to (``cpu`` or ``cuda``), and ``amp`` its
            autocast mode: a resume on another kind of machine would mix incomparable scores.
        seed: Run seed; combined with the spec string into each candidate's training seed.
        devices: Latency device tables (empty when latency is measured here).
        measure: Timing of ``--latency measure`` (None: predicted from the tables).
        machine: Description of this machine when latency is measured here.
        strict: Refuse interpolated latency-table entries.
        versions: torch and onnxruntime versions.
        low_epochs: Multi-fidelity search: the proxy epochs of each lower rung (empty: one fidelity).
    """

    run_dir: str
    space: str
    input_shape: tuple[int, ...]
    n_classes: int
    data: str
    proxy: TrainConfig
    proxy_device: str
    amp: str
    seed: int
    devices: tuple[DeviceTable, ...] = ()
    measure: TimingConfig | None = None
    machine: dict | None = None
    strict: bool = False
    versions: dict | None = None
    low_epochs: tuple[int, ...] = ()


class AudioProblem(SearchProblem):
    """Search a space for classifiers of the features in the run folder.

    Args:
        settings: Data, space, proxy training and latency settings.
        objectives: The objectives (``latency_ms`` already expanded to one per device).
        constraints: Constraints on metrics.
    """

    def __init__(self, settings: AudioSettings, objectives: list[ObjectiveSpec], constraints: list[Constraint]):
        self.settings = settings
        self.objectives = objectives
        self.constraints = constraints
        self.gene_bounds = list(create_search_space(settings.space).gene_bounds)
        self.fidelities = tuple(f"{e} epoch(s) of proxy training" for e in settings.low_epochs)
        # proxy training time follows the activation maps more closely than MACs (benchmarks/bench_dispatch.py)
        self.cost_metric = "activations_m"

    @property
    def _space(self):
        return create_search_space(self.settings.space)

    def canonical(self, genome) -> list[int]:
        """Genes of inactive stages and unused expansions zeroed."""
        return self._space.canonical(list(genome))

    def key(self, genome) -> str:
        """The ArchSpec's canonical string."""
        return str(self._space.decode(list(genome)))

    def latency_metrics(self) -> list[str]:
        """Names of the latency metrics: one per device, or ``latency_ms_local`` when measured here."""
        if self.settings.measure is not None:
            return [latency_metric("local")]
        return [latency_metric(d.name) for d in self.settings.devices]

    def precheck(self, genome) -> dict[str, Any]:
        """Size, MACs, parameters and latency on every device: no training."""
        s = self.settings
        spec = self._space.decode(genome)
        try:
            units = self._space.trace(spec, s.n_classes, s.input_shape)
        except UserError as exc:  # too small an input for its strides: infeasible, never trained
            nan = math.nan
            return {"params": nan, "size_kb": nan, "size_kb_int8": nan, "macs_m": nan, "activations_m": nan,
                    **dict.fromkeys(self.latency_metrics(), nan), "unfit": str(exc)[:200]}  # fmt: skip
        out: dict[str, Any] = {
            "params": sum(u.params for u in units),
            "macs_m": sum(u.macs for u in units) / 1e6,
            "activations_m": sum(u.activations for u in units) / 1e6,  # what the proxy training's time follows
            "size_kb": deployable_size_kb(units),  # fp32 weights after BatchNorm folding
            "size_kb_int8": int8_size_kb(units),  # as a static INT8 (QDQ, per-channel) ONNX file stores them
        }
        if s.measure is not None:
            model = self._space.build(spec, s.n_classes, s.input_shape)
            timing = s.measure.end_to_end()
            out[latency_metric("local")] = time_model(export_onnx(model, s.input_shape), timing).latency_ms
            out["latency_source"] = "measured"
        elif s.devices:
            for device in s.devices:
                prediction = cached_table(device.csv_path).predict(spec, strict=s.strict, n_classes=s.n_classes)
                name = latency_metric(device.name)
                out[name] = prediction.latency_ms
                out["interpolated_share_" + name.removeprefix("latency_ms_")] = round(prediction.interpolated_share, 4)
            out["latency_source"] = "table"
        return out

    def evaluate(self, genome) -> dict[str, Any]:
        """Train briefly on the train split; validation accuracy and macro-F1 (a worker process)."""
        return self._train(genome, self.settings.proxy.epochs)

    def evaluate_low(self, genome, rung: int) -> dict[str, Any]:
        """:meth:`evaluate` with the proxy trained ``low_epochs[rung]`` epochs (the same seed and recipe)."""
        return self._train(genome, self.settings.low_epochs[rung])

    def _train(self, genome, epochs: int) -> dict[str, Any]:
        from train.trainer import train_model

        s = self.settings
        spec = self._space.decode(genome)
        features = _features(s.run_dir, s.data)
        try:
            model = self._space.build(spec, features.n_classes, features.input_shape)
        except UserError as exc:  # unfit for the input: infeasible, not a reason to stop the search
            return {"accuracy": math.nan, "macro_f1": math.nan, "unfit": str(exc)[:200]}
        seed = seed_from_string(f"{s.seed}:{spec}")
        result = train_model(model, features, dataclasses.replace(s.proxy, seed=seed, epochs=epochs))
        nan = math.nan
        return {
            "accuracy": result.best_val_accuracy if not result.diverged else nan,
            "macro_f1": result.best_val_macro_f1 if not result.diverged else nan,
            "train_s": round(result.wall_s, 2),
            "epochs": result.epochs_run,
            "seed": seed,
            "device": str(result.device),
        }

    def metric_descriptions(self) -> dict[str, str]:
        """The column legend of ``pareto.csv``; params and MACs are added to it beside the objectives."""
        s = self.settings
        subset = "" if s.proxy.train_subset == 1 else f" (train_subset {s.proxy.train_subset:g})"
        proxy = f"{s.proxy.epochs} epoch(s) of proxy training on the train split{subset}, scored on validation"
        out = {
            "accuracy": f"proxy validation accuracy (fraction; {proxy}); not a test accuracy",
            "macro_f1": f"proxy validation macro-F1 ({proxy})",
            "size_kb": "fp32 weights after BatchNorm folding, KiB (what an fp32 deployment stores)",
            "size_kb_int8": "weights as a static INT8 ONNX file stores them (QDQ, per-channel scales), KiB",
            "params": "trainable parameters",
            "macs_m": "multiply-accumulates per clip, millions",
        }
        if s.measure is not None:
            out[latency_metric("local")] = (
                f"latency in ms measured on this machine ({(s.machine or {}).get('cpu_model', 'CPU')}) in ONNX "
                f"Runtime, batch 1, {s.measure.threads} thread(s), fp32"
            )
        for device in s.devices:
            out[latency_metric(device.name)] = (
                f"latency in ms predicted by the latency table of device {device.name} {_table_legend(device.csv_path)}"
            )
        return out

    def describe(self) -> dict[str, Any]:
        """Everything that changes results (compared on resume); paths are left out."""
        settings = dataclasses.asdict(self.settings)
        settings.pop("run_dir")
        if not self.settings.low_epochs:
            settings.pop("low_epochs")  # one fidelity, as in searches written before the field existed
        proxy = dataclasses.asdict(self.settings.proxy)
        proxy.pop("progress", None)  # display only
        if self.settings.proxy_device != "cuda":
            proxy.pop("deterministic", None)  # selects CUDA kernels; changes no CPU result
        if not self.settings.proxy.wave_augment.enabled:
            proxy.pop("wave_augment", None)  # off, as in searches written before the field existed
        if self.settings.proxy.memory_format == "contiguous":
            proxy.pop("memory_format", None)  # the layout of searches written before the field existed
        settings["proxy"] = proxy
        settings["size_kb"] = SIZE_DEFINITION
        settings["devices"] = [{"name": d.name, "fingerprint": d.fingerprint} for d in self.settings.devices]
        return settings


def _features(run_dir: str, fingerprint: str) -> Features:
    """The run's features, loaded once per worker process and checked against the search's data."""
    key = (run_dir, fingerprint)
    if key not in _FEATURES:
        try:
            features = load_features(run_dir)
        except (FileNotFoundError, OSError) as exc:
            raise UserError(
                f"a worker cannot read the run's features under {run_dir} ({exc}); with --backend dask the run "
                "folder and the feature cache must be on a filesystem every worker sees, at the same path"
            ) from None
        found = features.fingerprint
        if found != fingerprint:
            raise UserError(
                f"the data in {run_dir}/data changed under the running search (fingerprint {found}, the search "
                f"started on {fingerprint}); another run wrote into this folder: give each run its own --out"
            )
        _FEATURES[key] = features
    return _FEATURES[key]


def reference_spec(space: str, n_classes: int, input_shape: tuple[int, ...]) -> ArchSpec:
    """The spec whose cost sets the default hypervolume reference.

    ``medium`` in mel2d (fronts then read as "better than the medium baseline"); in other spaces
    the most expensive (by MACs) of a fixed, seeded sample of 200 specs that fit the input.
    """
    import random

    from search_spaces.baselines import BASELINE_SPACE, get_baseline

    if space == BASELINE_SPACE:
        return get_baseline("medium")
    searched = create_search_space(space)
    rng, best, best_macs = random.Random(0), None, -1
    for _ in range(200):
        spec = searched.sample(rng)
        try:
            macs = sum(u.macs for u in searched.trace(spec, n_classes, input_shape))
        except UserError:
            continue
        if macs > best_macs:
            best, best_macs = spec, macs
    if best is None:
        raise UserError(f"no spec of space '{space}' fits input shape {input_shape}; use longer or larger inputs")
    return best


def reference_values(space: str, n_classes: int, input_shape: tuple[int, ...], latencies: dict[str, float]):
    """Default ``worst`` values (hypervolume reference) from :func:`reference_spec`'s cost."""
    spec = reference_spec(space, n_classes, input_shape)
    units = create_search_space(spec.space).trace(spec, n_classes, input_shape)
    return {
        "params": float(sum(u.params for u in units)),
        "macs_m": sum(u.macs for u in units) / 1e6,
        "size_kb": deployable_size_kb(units),
        "size_kb_int8": int8_size_kb(units),
        **latencies,
    }
