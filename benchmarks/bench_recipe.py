"""Training recipes on FSDD with unseen speakers: each CNN beside the linear reference, mean +- std over seeds.

Usage: python benchmarks/bench_recipe.py [--fsdd PATH] [--recipes absolute,peak,peak+ls+mixup]
       [--models tiny,dscnn] [--epochs 10] [--seeds 3] [--split speaker] [--out runs/bench-recipe]

A recipe is parts joined by ``+``, each part a set of config overrides (``PARTS``): ``absolute``
or ``peak`` (``features.db_reference``), ``cmn`` or ``cmvn`` (``features.clip_norm``: per-clip,
per-band mean or mean and variance normalisation), ``top40`` or ``top80`` (``features.top_db``:
dynamic range kept below each clip's peak), ``plain`` (no regulariser: label smoothing, mixup and
augmentation off), ``ls`` (label smoothing 0.1), ``mixup`` (alpha 0.2), ``wave`` (4 cached
waveform-augmented copies per clip), ``pitch`` (those copies also pitch-shifted +-2 semitones),
``specaug`` (2 frequency masks of <= 6 bins, 2 time masks of <= 12 frames), ``fmax4k``
(``features.fmax_hz`` 4000: the mel bands span 0-4 kHz, all FSDD's 8 kHz audio holds). Later parts override
earlier ones. Every recipe runs the ``baseline`` stage in its own folder (features are cached and
shared between recipes with the same feature settings) and prints one line per model; the table at
the end holds every recipe, so an ablation reads as the rows that differ by one part.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pipeline.baseline_stage import run_baselines
from pipeline.config import build_config
from pipeline.features_stage import run as run_features_stage
from pipeline.run_folder import init_run_folder

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
DEFAULT_RECIPES = "absolute+plain,peak+plain,peak+plain+ls,peak+plain+mixup,peak+plain+ls+mixup,peak,peak+wave"

PARTS: dict[str, dict[str, Any]] = {
    "absolute": {"features": {"db_reference": "absolute"}},
    "peak": {"features": {"db_reference": "peak"}},
    "cmn": {"features": {"clip_norm": "mean"}},
    "cmvn": {"features": {"clip_norm": "meanvar"}},
    "top40": {"features": {"top_db": 40.0}},
    "top80": {"features": {"top_db": 80.0}},
    "fmax4k": {"features": {"fmax_hz": 4000.0}},
    "plain": {"train": {"label_smoothing": 0.0, "mixup_alpha": 0.0, "wave_augment": {"copies": 0}}},
    "ls": {"train": {"label_smoothing": 0.1}},
    "mixup": {"train": {"mixup_alpha": 0.2}},
    "wave": {"train": {"wave_augment": {"copies": 4}}},
    "pitch": {"train": {"wave_augment": {"copies": 4, "pitch_semitones": [-2.0, 2.0]}}},
    "specaug": {"train": {"spec_augment": {"freq_masks": 2, "freq_mask_bins": 6, "time_masks": 2,
                                           "time_mask_frames": 12}}},
}  # fmt: skip


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` written over it, section by section (nested dicts merged)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def recipe_overrides(recipe: str) -> dict[str, Any]:
    """The config overrides of a ``+``-joined recipe name."""
    out: dict[str, Any] = {}
    for part in recipe.split("+"):
        if part not in PARTS:
            raise SystemExit(f"unknown recipe part '{part}'; known parts: {', '.join(PARTS)}")
        out = merge(out, PARTS[part])
    return out


def _pm(stat: dict) -> str:
    return f"{100 * stat['mean']:5.1f} +- {100 * (stat['std'] or 0):4.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--recipes", default=DEFAULT_RECIPES)
    parser.add_argument("--models", default="tiny,dscnn")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--split", default="speaker", choices=("speaker", "official"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-recipe"))
    args = parser.parse_args()
    models = args.models.split(",")
    table: list[tuple[str, dict[str, str], float]] = []
    for recipe in args.recipes.split(","):
        base = {
            "data": {"dataset": "fsdd", "path": str(args.fsdd), "split": args.split},
            "train": {"epochs": args.epochs},
            "baseline": {"seeds": args.seeds, "models": models},
            "run": {"progress": False},
        }
        cfg = build_config(None, merge(base, recipe_overrides(recipe)))
        run_dir = init_run_folder(args.out / args.split / recipe, cfg)
        features = run_features_stage(cfg, run_dir).features  # and the augmented copies, once
        start = time.perf_counter()
        summaries = run_baselines(cfg, run_dir, resume=True)
        wall_s = time.perf_counter() - start
        row = {s["model"]: _pm(s["test"]["accuracy"]) for s in summaries}
        table.append((recipe, row, wall_s))
        print(f"{recipe}: " + ", ".join(f"{m} {v}" for m, v in row.items()) + f" ({wall_s:.0f} s)", flush=True)
    names = [*models, "linear"]
    print(f"\nFSDD, {features.splits.protocol}; test accuracy %, {args.epochs} epochs x {args.seeds} seeds")
    print(f"{'recipe':<28}" + "".join(f"{n:>16}" for n in names) + f"{'wall s':>8}")
    for recipe, row, wall_s in table:
        print(f"{recipe:<28}" + "".join(f"{row.get(n, '-'):>16}" for n in names) + f"{wall_s:>8.0f}")


if __name__ == "__main__":
    main()
