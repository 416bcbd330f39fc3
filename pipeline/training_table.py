"""``training_results.csv``: every fully trained model, mean +- std over seeds, distilled beside plain.

A distilled student's row names the plain model of the same architecture and gives the paired
difference in test accuracy (distilled minus plain, over the seeds both were trained with) with
its spread, so the distillation ablation is read off one row.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from common.config_io import dataclass_from_dict
from common.errors import UserError
from search_spaces import profile
from train.feature_set import Features
from train.train_config import TrainConfig

TRAINING_COLUMNS = [
    "model", "kind", "seeds", "test_accuracy_mean", "test_accuracy_std", "test_macro_f1_mean", "test_macro_f1_std",
    "val_accuracy_mean", "val_accuracy_std", "proxy_accuracy", "plain_model", "delta_test_accuracy_pts",
    "delta_test_accuracy_pts_std", "paired_seeds", "teacher", "epochs", "recipe", "params", "size_kb", "macs_m",
    "spec",
]  # fmt: skip


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _recipe(record: dict[str, Any]) -> tuple[str, str]:
    """What must match for two runs to be a fair pair: the training settings but the seed, and the data."""
    settings = record.get("settings", {})
    train = {k: v for k, v in settings.get("train", {}).items() if k not in ("seed", "progress")}
    return json.dumps(train, sort_keys=True), str(settings.get("data"))


def _paired_delta(student: list[dict[str, Any]], plain: list[dict[str, Any]]) -> tuple[float | None, float | None, int]:
    """Mean and std of (distilled - plain) test accuracy in points over the seeds both ran with the same recipe.

    A plain run trained with other settings (e.g. a baseline of ``--mode baseline --epochs 10``
    beside students of ``--mode quantization --epochs 30``) is no pair: the difference would
    measure the recipe, not distillation.
    """
    by_seed = {(r["seed"], _recipe(r)): r["test"]["accuracy"] for r in plain}
    keys = [((r["seed"], _recipe(r)), r) for r in student]
    deltas = [100 * (r["test"]["accuracy"] - by_seed[key]) for key, r in keys if key in by_seed]
    if not deltas:
        return None, None, 0
    mean, std = _mean_std(deltas)
    return mean, std, len(deltas)


def training_rows(
    trained: dict[str, list[dict[str, Any]]], features: Features, survivors: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per fully trained model (see :data:`TRAINING_COLUMNS`).

    Args:
        trained: Finished ``run.json`` records by model name (one per seed).
        features: The run's features (for the profile of each architecture).
        survivors: The search's survivors by name (for their proxy accuracy).
    """
    rows = []
    for name, runs in trained.items():
        if not runs:
            continue
        first = runs[0]
        space_spec = _parse(first["spec"])
        prof = profile(space_spec, features.n_classes, features.input_shape)
        test_acc = _mean_std([r["test"]["accuracy"] for r in runs])
        test_f1 = _mean_std([r["test"]["macro_f1"] for r in runs])
        val_acc = _mean_std([r["train"]["best_val_accuracy"] for r in runs])
        row: dict[str, Any] = {
            "model": name, "kind": first.get("kind", "baseline"), "seeds": len(runs),
            "test_accuracy_mean": test_acc[0], "test_accuracy_std": test_acc[1],
            "test_macro_f1_mean": test_f1[0], "test_macro_f1_std": test_f1[1],
            "val_accuracy_mean": val_acc[0], "val_accuracy_std": val_acc[1],
            "teacher": first.get("teacher") or "", "epochs": first["settings"]["train"]["epochs"],
            "recipe": _recipe_text(first["settings"]["train"]),
            "params": prof.params, "size_kb": prof.size_kb, "macs_m": prof.macs_m, "spec": first["spec"],
        }  # fmt: skip
        base = name.removesuffix("-kd")
        if base in survivors:
            row["proxy_accuracy"] = survivors[base].proxy.get("accuracy")
        if row["kind"] == "distilled" and base in trained:
            delta, spread, n = _paired_delta(runs, trained[base])
            row.update({"plain_model": base, "delta_test_accuracy_pts": delta, "delta_test_accuracy_pts_std": spread,
                        "paired_seeds": n})  # fmt: skip
        rows.append(row)
    return rows


def _recipe_text(train: dict[str, Any]) -> str:
    """:meth:`TrainConfig.recipe` of a run's recorded settings ("" for a record this version cannot read)."""
    try:
        return dataclass_from_dict(TrainConfig, train, "run settings").recipe()
    except UserError:
        return ""


def _parse(spec: str):
    from pipeline.final_training import spec_space
    from search_spaces import create_search_space

    return create_search_space(spec_space(spec)).parse(spec)
