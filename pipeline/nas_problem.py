"""The audio search problem: genomes of a search space, scored by proxy training and device latency.

Plugged into the generic engine in :mod:`nas` (which knows nothing of audio). ``precheck`` runs
in the search process and computes the cheap metrics (size, MACs, parameters, latency on every
device from its lookup table, or timed here); ``evaluate`` runs in a worker and trains the
candidate briefly on the train split, scoring it on the validation split (never the test split).
The object is plain data (paths and settings); workers load the cached features lazily, once per
process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.hashing import seed_from_string
from latency_tables.layout import export_onnx
from latency_tables.ort_timing import TimingConfig, time_model
from latency_tables.registry import cached_table
from nas.problem import Constraint, ObjectiveSpec, SearchProblem
from search_spaces import create_search_space, get_baseline
from search_spaces.profile import state_dict_bytes
from train.feature_set import Features, load_features
from train.train_config import TrainConfig

_FEATURES: dict[str, Features] = {}  # per worker process: run folder -> features


def latency_metric(device: str) -> str:
    """Metric name of the latency on ``device``: ``latency_ms_<device>`` with non-identifier characters as ``_``."""
    return "latency_ms_" + re.sub(r"[^A-Za-z0-9_]", "_", device)


def _features(run_dir: str) -> Features:
    if run_dir not in _FEATURES:
        _FEATURES[run_dir] = load_features(run_dir)
    return _FEATURES[run_dir]


@dataclass(frozen=True)
class DeviceTable:
    """A device's table file, identified by its content hash (so a resume can tell if it changed)."""

    name: str
    csv_path: str
    sha256: str

    @classmethod
    def of(cls, table) -> DeviceTable:
        """From a loaded :class:`latency_tables.table.LatencyTable`."""
        digest = hashlib.sha256(Path(table.path).read_bytes()).hexdigest()[:16]
        return cls(table.name, str(table.path), digest)


class AudioProblem(SearchProblem):
    """Search ``space`` for classifiers of the features in ``run_dir``.

    Args:
        run_dir: Run folder holding the features stage outputs.
        space: Search space name.
        input_shape: Per-example model input shape.
        n_classes: Number of classes.
        objectives: Objective names (see :data:`pipeline.nas_config.OBJECTIVES`).
        constraints: Constraints on metrics (``latency_ms`` bounds already expanded per device).
        devices: Latency device tables (empty when latency is measured here).
        measure: Time each candidate here with ONNX Runtime instead of predicting it.
        proxy: Training settings of the accuracy proxy (its seed is replaced per candidate).
        seed: Run seed; combined with the spec string into each candidate's training seed.
        references: ``worst`` value per objective (the hypervolume reference point).
        data_key: Feature cache key (identifies the data; compared on resume).
        strict: Refuse interpolated latency-table entries (a missing op stops the search with a
            message naming it and the command that measures it).
    """

    def __init__(
        self,
        run_dir: Path,
        space: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        objectives: list[ObjectiveSpec],
        constraints: list[Constraint],
        devices: list[DeviceTable],
        measure: bool,
        proxy: TrainConfig,
        seed: int,
        data_key: str,
        strict: bool = False,
    ) -> None:
        self.run_dir = str(run_dir)
        self.space = space
        self.input_shape = tuple(input_shape)
        self.n_classes = n_classes
        self.objectives = objectives
        self.constraints = constraints
        self.devices = devices
        self.measure = measure
        self.proxy = proxy
        self.seed = seed
        self.data_key = data_key
        self.strict = strict
        self.gene_bounds = list(create_search_space(space).gene_bounds)

    def canonical(self, genome) -> list[int]:
        """Genes of inactive stages and unused expansions zeroed."""
        return create_search_space(self.space).canonical(list(genome))

    def key(self, genome) -> str:
        """The ArchSpec's canonical string."""
        return str(create_search_space(self.space).decode(list(genome)))

    def precheck(self, genome) -> dict[str, Any]:
        """Size, MACs, parameters and latency on every device: no training."""
        space = create_search_space(self.space)
        spec = space.decode(genome)
        try:
            units = space.trace(spec, self.n_classes, self.input_shape)
        except UserError as exc:  # too small an input for its strides: infeasible, never trained
            nan = float("nan")
            return {"params": nan, "size_kb": nan, "macs_m": nan, "unfit": str(exc)[:200]}
        model = space.build(spec, self.n_classes, self.input_shape)
        out: dict[str, Any] = {
            "params": sum(u.params for u in units),
            "macs_m": sum(u.macs for u in units) / 1e6,
            "size_kb": state_dict_bytes(model) / 1024,
        }
        if self.measure:
            timing = TimingConfig(sessions=3).end_to_end()
            out[latency_metric("local")] = time_model(export_onnx(model, self.input_shape), timing).latency_ms
            out["latency_source"] = "measured"
        else:
            for device in self.devices:
                prediction = cached_table(device.csv_path).predict(spec, strict=self.strict, n_classes=self.n_classes)
                out[latency_metric(device.name)] = prediction.latency_ms
                out[f"interpolated_share_{latency_metric(device.name)[11:]}"] = round(prediction.interpolated_share, 4)
            out["latency_source"] = "table"
        return out

    def evaluate(self, genome) -> dict[str, Any]:
        """Train briefly on the train split; validation accuracy and macro-F1 (a worker process)."""
        from train.trainer import train_model

        space = create_search_space(self.space)
        spec = space.decode(genome)
        features = _features(self.run_dir)
        seed = seed_from_string(f"{self.seed}:{spec}")
        model = space.build(spec, features.n_classes, features.input_shape)
        result = train_model(model, features, dataclasses.replace(self.proxy, seed=seed))
        nan = float("nan")
        return {
            "accuracy": result.best_val_accuracy if not result.diverged else nan,
            "macro_f1": result.best_val_macro_f1 if not result.diverged else nan,
            "train_s": round(result.wall_s, 2),
            "epochs": result.epochs_run,
            "seed": seed,
            "device": str(result.device),
        }

    def describe(self) -> dict[str, Any]:
        """Everything that changes results: compared on resume."""
        return {
            "space": self.space,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "data": self.data_key,
            "proxy": dataclasses.asdict(dataclasses.replace(self.proxy, progress=False)),
            "seed": self.seed,
            "latency": "measured" if self.measure else [{"name": d.name, "sha256": d.sha256} for d in self.devices],
            "torch_threads": self.proxy.num_threads,
        }


def reference_values(space: str, n_classes: int, input_shape: tuple[int, ...], latencies: dict[str, float]):
    """Default ``worst`` values (hypervolume reference) from the ``medium`` baseline's cost."""
    spec = get_baseline("medium")
    units = create_search_space(spec.space).trace(spec, n_classes, input_shape)
    model = create_search_space(spec.space).build(spec, n_classes, input_shape)
    return {
        "params": float(sum(u.params for u in units)),
        "macs_m": sum(u.macs for u in units) / 1e6,
        "size_kb": state_dict_bytes(model) / 1024,
        **latencies,
    }
