"""Which fully trained model teaches the distilled students, and which models are students."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.errors import UserError
from pipeline.final_training import TeacherRef, build_for, checkpoint_of
from pipeline.quantize_config import DistillSettings
from train.checkpoint import load_checkpoint
from train.distill import DistillConfig, Teacher
from train.feature_set import Features


def _best_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A model's finished run with the best validation accuracy (then macro-F1, then the lower seed index)."""
    return min(
        runs, key=lambda r: (-r["train"]["best_val_accuracy"], -r["train"]["best_val_macro_f1"], r["seed_index"])
    )


def choose_teacher(
    settings: DistillSettings, trained: dict[str, list[dict[str, Any]]], run_dir: Path, features: Features
) -> TeacherRef:
    """The teacher: the most accurate fully trained model on validation, a named one, or a checkpoint.

    Args:
        settings: The ``quantize.distill`` settings.
        trained: Finished runs (``run.json`` records, by seed index) of every plain model, by name.
        run_dir: The run folder.
        features: The run's features (the teacher must predict the same classes from the same inputs).

    Raises:
        UserError: An unknown teacher name, a missing checkpoint or spec, or a teacher of other
            classes or input shape than the run's.
    """
    distill = DistillConfig(settings.temperature, settings.alpha)
    choice = settings.teacher
    if choice == "auto":
        if not trained:
            raise UserError("no fully trained model to distil from; train baselines (--mode baseline) or survivors")
        best = [(name, _best_run(runs)) for name, runs in trained.items() if runs]
        name, record = max(best, key=lambda t: (t[1]["train"]["best_val_accuracy"], t[1]["train"]["best_val_macro_f1"],
                                                t[0]))  # fmt: skip
        ref = TeacherRef(name, record["spec"], str(checkpoint_of(run_dir, record)), distill)
    elif trained.get(choice):
        record = _best_run(trained[choice])
        ref = TeacherRef(choice, record["spec"], str(checkpoint_of(run_dir, record)), distill)
    elif choice.endswith(".pt"):
        ref = TeacherRef(choice, _checkpoint_spec(Path(choice), settings.teacher_spec), choice, distill)
    else:
        known = ", ".join(sorted(trained)) or "none yet"
        raise UserError(
            f"quantize.distill.teacher '{choice}' is not a trained model of this run (trained: {known}), 'auto', "
            "or the path of a training checkpoint (.pt)"
        )
    check_teacher(ref, features)
    return ref


def _checkpoint_spec(path: Path, spec: str | None) -> str:
    if not path.is_file():
        raise UserError(f"teacher checkpoint {path} does not exist")
    if spec:
        return spec
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True).get("spec")
    except Exception as exc:  # any unreadable file gets the same message
        raise UserError(f"teacher checkpoint {path} is not readable as a training checkpoint ({exc})") from None
    if not stored:
        raise UserError(f"teacher checkpoint {path} names no architecture; set quantize.distill.teacher_spec")
    return stored


def check_teacher(ref: TeacherRef, features: Features) -> None:
    """Load the teacher once here, so a teacher of other classes or inputs is refused before any training.

    Raises:
        UserError: As :meth:`train.distill.Teacher.check_compatible`, or an unusable checkpoint.
    """
    data = load_checkpoint(ref.checkpoint, ref.spec)["config"]["data"]
    classes, shape = list(data["classes"]), tuple(data["input_shape"])
    if classes != list(features.classes) or shape != tuple(features.input_shape):
        raise UserError(
            f"teacher {ref.name} was trained on {len(classes)} classes with inputs {shape}, but this run has "
            f"{features.n_classes} classes ({', '.join(features.classes[:4])}, ...) with inputs "
            f"{features.input_shape}; "
            "distil from a teacher trained on this run's data and features"
        )
    model = build_for(ref.spec, features)
    Teacher.from_checkpoint(model, ref.checkpoint, ref.distill, ref.spec).check_compatible(features)


def students(settings: DistillSettings, plain: list[str], survivors: list[str], teacher: TeacherRef) -> list[str]:
    """Names of the models to distil: the survivors (default) or every plain model, never the teacher itself."""
    if settings.students == "none":
        return []
    pool = survivors if settings.students == "survivors" else plain
    return [name for name in pool if name != teacher.name]
