"""Full training of one model for one seed, tested once: baselines, search survivors and distilled students alike.

A run lives in ``models/<name>/`` (first seed) or ``models/<name>/seed<k>/`` and holds
``settings.json`` (written when it starts), ``best.pt``/``last.pt`` (the trainer's checkpoints) and
``run.json`` (written when it is finished and tested). A finished run with the same settings is
reused, one with other settings refused; an unfinished one continues from ``last.pt`` under
``resume`` and starts over otherwise.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from common.errors import UserError
from search_spaces import create_search_space
from search_spaces.spec import ArchSpec
from train.distill import DistillConfig, Teacher
from train.evaluate import evaluate_model
from train.feature_set import Features, load_features
from train.train_config import TrainConfig
from train.trainer import train_model


@dataclass(frozen=True)
class TeacherRef:
    """Where a student's teacher is: a trained checkpoint of the run (or elsewhere) and its spec.

    Attributes:
        name: The teacher's model name in the run (or the checkpoint path for an outside teacher).
        spec: The teacher's architecture string.
        checkpoint: Its ``best.pt``.
        distill: Temperature and loss weight.
    """

    name: str
    spec: str
    checkpoint: str
    distill: DistillConfig


@dataclass(frozen=True)
class TrainJob:
    """One (model, seed) training run.

    Attributes:
        name: Folder name under ``models/``.
        spec: Canonical architecture string.
        seed_index: k: the run's folder is ``models/<name>`` for k = 0, ``models/<name>/seed<k>`` after.
        train: Training settings, with ``seed`` set for this run.
        kind: ``baseline``, ``nas`` (a search survivor) or ``distilled``.
        teacher: The teacher of a distilled student, else None.
    """

    name: str
    spec: str
    seed_index: int
    train: TrainConfig
    kind: str = "baseline"
    teacher: TeacherRef | None = None


def model_dir(run_dir: Path, name: str, k: int = 0) -> Path:
    """Folder of one training run: ``models/<name>`` for the first seed, ``models/<name>/seed<k>`` after."""
    base = Path(run_dir) / "models" / name
    return base if k == 0 else base / f"seed{k}"


def build_for(spec: str | ArchSpec, features: Features):
    """A fresh network of ``spec`` (canonical string or ArchSpec) for the run's classes and inputs."""
    if isinstance(spec, str):
        space_name = spec_space(spec)
        spec = create_search_space(space_name).parse(spec)
    return create_search_space(spec.space).build(spec, features.n_classes, features.input_shape)


def spec_space(spec: str) -> str:
    """The search space a canonical spec string belongs to (the first space that parses it)."""
    from search_spaces import list_search_spaces

    for name in list_search_spaces():
        try:
            create_search_space(name).parse(spec)
        except UserError:
            continue
        return name
    raise UserError(f"'{spec}' is not a spec of any search space ({', '.join(list_search_spaces())})")


def _settings(job: TrainJob, data: str, teacher: Teacher | None) -> dict[str, Any]:
    """What decides a training run's result (progress display aside)."""
    return {
        "spec": job.spec,
        "train": asdict(replace(job.train, progress=False)),
        "data": data,
        "distill": None if teacher is None else teacher.checkpoint_info(),
    }


def _check_same(folder: Path, stored: dict[str, Any], settings: dict[str, Any]) -> None:
    changed = [f"{section}: {stored.get(section)!r} -> {settings[section]!r}" for section in ("spec", "data", "distill")
               if stored.get(section) != settings[section]]  # fmt: skip
    defaults = _as_json(asdict(TrainConfig()))  # a field added since the run was stored had its default then
    defaults["memory_format"] = "contiguous"  # except the layout: runs stored before the field trained contiguous
    old_train, new_train = stored.get("train", {}), _as_json(settings["train"])
    changed += [f"train.{k}: {old_train.get(k, defaults.get(k))!r} -> {v!r}" for k, v in new_train.items()
                if _as_json(old_train.get(k, defaults.get(k))) != v]  # fmt: skip
    if changed:
        raise UserError(
            f"{folder} holds a run trained with other settings ({'; '.join(changed[:4])}); "
            "restore those settings, use another --out, or delete that folder to train it again"
        )


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so stored and new settings compare equal."""
    return json.loads(json.dumps(value, default=str))


def _load_teacher(ref: TeacherRef | None, features: Features) -> Teacher | None:
    if ref is None:
        return None
    if not Path(ref.checkpoint).is_file():
        raise UserError(f"teacher checkpoint {ref.checkpoint} ({ref.name}) is missing; train that model first")
    return Teacher.from_checkpoint(build_for(ref.spec, features), ref.checkpoint, ref.distill, ref.spec)


def train_and_test(run_dir: Path, job: TrainJob, resume: bool) -> dict[str, Any]:
    """Train and test one (model, seed); runs in a worker process (the features are memory-mapped again).

    Returns:
        The ``run.json`` record: model, kind, seed, spec, settings, the trainer's result and the
        test metrics (accuracy, macro-F1, per-class, confusion matrix).

    Raises:
        UserError: The folder holds a run with other settings, or the teacher is unusable.
    """
    out = model_dir(run_dir, job.name, job.seed_index)
    features = load_features(run_dir)
    teacher = _load_teacher(job.teacher, features)
    settings = _settings(job, features.fingerprint, teacher)
    done, started = out / "run.json", out / "settings.json"
    if done.is_file():
        record = json.loads(done.read_text())
        _check_same(out, record.get("settings", {}), settings)
        return record
    if resume and started.is_file():
        _check_same(out, json.loads(started.read_text()), settings)
    atomic_write_json(started, settings)
    model = build_for(job.spec, features)
    start = time.perf_counter()
    result = train_model(
        model, features, job.train, out_dir=out, spec=job.spec, resume=resume and out.exists(), teacher=teacher
    )
    test = evaluate_model(model, features, "test", batch_size=job.train.eval_batch_size)
    record = {
        "model": job.name,
        "kind": job.kind,
        "seed": job.train.seed,
        "seed_index": job.seed_index,
        "spec": job.spec,
        "teacher": None if job.teacher is None else job.teacher.name,
        "settings": settings,
        "train": result.to_dict() | {"wall_s": time.perf_counter() - start},
        "test": test,
    }
    atomic_write_json(done, record)
    return record


_SEED_FOLDER = re.compile(r"^seed(\d+)$")


def finished_runs(run_dir: Path, name: str) -> list[dict[str, Any]]:
    """The ``run.json`` records of every finished seed of model ``name``, by seed index.

    Each record carries ``seed_index`` (its folder: :func:`model_dir`), also for runs written
    before the field existed; unfinished seeds are left out, so indexes can have gaps.
    """
    base = model_dir(run_dir, name)
    indexed = [(0, base / "run.json")]
    for folder in base.glob("seed*"):
        match = _SEED_FOLDER.match(folder.name)
        if match and folder.is_dir() and int(match.group(1)) > 0:
            indexed.append((int(match.group(1)), folder / "run.json"))
    records = []
    for k, path in sorted(indexed):
        if path.is_file():
            records.append(json.loads(path.read_text()) | {"seed_index": k})
    return records


def checkpoint_of(run_dir: Path, record: dict[str, Any]) -> Path:
    """The ``best.pt`` of a finished run record (from :func:`finished_runs`)."""
    return model_dir(run_dir, record["model"], int(record["seed_index"])) / "best.pt"
