"""``--mode predict --model FILE.onnx PATH...``: classify audio files with an exported model.

The model card beside the ONNX file (``FILE.json``) says how to feed it; every file goes through
the same front end as training (:func:`train.feature_cache.extract_file`: read, resample,
crop/pad, log-mel/MFCC), then the card's normalisation. Files that are not usable audio are
skipped and listed, never fatal; ``--out`` writes a CSV (``--out x.csv``, or ``<out>/predictions.csv``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_text
from common.errors import UserError
from common.folders import check_writable_folder, nearest_existing
from pipeline.config import PipelineConfig
from quantize.model_card import ModelCard, read_card
from quantize.ort_eval import onnx_logits, open_session
from train.datasets.base import is_audio_file
from train.feature_cache import extract_file


@dataclass
class Predictions:
    """Per-file labels and probabilities, and the files that could not be used."""

    model: Path
    card: ModelCard
    rows: list[dict[str, object]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    csv_path: Path | None = None


def _files(inputs: tuple[str, ...]) -> tuple[list[Path], list[tuple[str, str]]]:
    files, skipped = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_file(p))
            if not found:
                skipped.append((str(path), "folder holds no audio files (.wav, .flac, .ogg, .mp3, .aiff)"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            skipped.append((str(path), "file not found"))
    return files, skipped


def check_output(out: Path) -> None:
    """Refuse, before any file is classified, an ``--out`` the predictions could not be written to.

    Raises:
        UserError: ``--out x.csv`` names a folder or lies in a folder that cannot be written, or
            ``--out DIR`` is a file or cannot be written.
    """
    if out.suffix.lower() != ".csv":
        check_writable_folder(out, "--out", "predictions folder")
        return
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a .csv file path, or a folder name without .csv")
    existing = nearest_existing(out.parent)
    if not existing.is_dir():
        raise UserError(f"--out {out}: the predictions CSV cannot be written because {existing} is a file, not a "
                        "folder; give --out a path inside a folder you can write")  # fmt: skip
    check_writable_folder(out.parent, "--out", "folder of the predictions CSV")


def features_of(path: Path, card: ModelCard) -> tuple[np.ndarray | None, str | None]:
    """The normalised model input of one file (shape ``card.input_shape``), or None and the reason."""
    feats, reason, _ = extract_file(str(path), card.feature_config())
    if feats is None:
        return None, reason
    x = card.normalization().apply(feats[None])
    return x.reshape(1, *card.input_shape), None


def run(cfg: PipelineConfig, run_dir: Path | None, resume: bool = False) -> Predictions:
    """Classify ``predict.inputs`` with ``predict.model``; writes a CSV when ``--out`` is given.

    Raises:
        UserError: No model or no inputs given, the model card is missing or malformed, or no
            input file is usable audio.
    """
    p = cfg.predict
    if not p.model:
        raise UserError("--mode predict needs --model FILE.onnx (an ONNX file written by --mode quantization)")
    if not p.inputs:
        raise UserError("--mode predict needs audio files or folders to classify after the options, e.g. a.wav dir/")
    model = Path(p.model)
    if not model.is_file():
        raise UserError(f"--model {model} does not exist (expected an .onnx file written by --mode quantization)")
    if run_dir is not None:
        check_output(run_dir)
    card = read_card(model)
    files, skipped = _files(p.inputs)
    n_inputs = len(files) + len(skipped)  # audio files found, and inputs that were none
    inputs, usable = [], []
    for path in files:
        x, reason = features_of(path, card)
        if x is None:
            skipped.append((str(path), reason or "unusable"))
        else:
            inputs.append(x)
            usable.append(path)
    result = Predictions(model, card, skipped=skipped)
    if not usable:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise UserError(f"none of the {n_inputs} input(s) is usable audio{first}")
    logits = onnx_logits(open_session(model), np.concatenate(inputs), batch_size=p.batch_size)
    probs = _softmax(logits)
    for path, prob in zip(usable, probs, strict=True):
        top = int(prob.argmax())
        result.rows.append({"path": str(path), "label": card.classes[top], "probability": float(prob[top])})
    if run_dir is not None:
        result.csv_path = run_dir if run_dir.suffix.lower() == ".csv" else run_dir / "predictions.csv"
        atomic_write_text(result.csv_path, _csv(result))
    return result


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _csv(result: Predictions) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "probability", "skipped_reason"])
    writer.writerows([r["path"], r["label"], f"{r['probability']:.6f}", ""] for r in result.rows)
    writer.writerows([path, "", "", reason] for path, reason in result.skipped)
    return buf.getvalue()


def summary(result: Predictions, run_dir: Path | None) -> list[str]:
    """One line per file (label and probability), then the skipped files and the CSV's place."""
    lines = [f"{r['path']}\t{r['label']}\t{r['probability']:.3f}" for r in result.rows]
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} file(s) that are not usable audio:")
        lines += [f"  {path}: {reason}" for path, reason in result.skipped]
    if result.csv_path is not None:
        lines.append(f"predictions in {result.csv_path}")
    return lines
