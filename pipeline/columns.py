"""What each column of the run folder's result tables is: ``<run>/columns.json``.

The search's own tables are described in ``nas/columns.json``.
"""

from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_write_json

_TEST = "on the test split (used for final evaluation only, never for selection)"
_PM = "mean over seeds; *_std: sample standard deviation over seeds"

TABLES: dict[str, dict[str, str]] = {
    "baseline_results.csv": {
        "model": "baseline name (search_spaces/baselines.py); linear: the linear reference",
        "kind": "baseline (a CNN) | reference (logistic regression on per-band mean/std/max of the same features, "
        "C chosen on validation; deterministic, so one seed)",
        "dataset": "dataset name",
        "split": "split protocol in words",
        "seeds": "training runs (seeds run.seed + k)",
        "params": "trainable parameters",
        "size_kb": "fp32 weights after BatchNorm folding, KiB",
        "macs_m": "multiply-accumulates per clip, millions",
        "test_accuracy_mean": f"test accuracy (fraction) {_TEST}; {_PM}",
        "test_macro_f1_mean": f"test macro-F1 {_TEST}; {_PM}",
        "val_macro_f1_mean": "validation macro-F1 of the selected (best validation) epoch, mean over seeds",
        "train_wall_s_mean": "training wall time per run (s), mean over seeds",
        "epochs": "training epochs",
        "recipe": "training settings that shape the result (train.*; the linear reference: how C was chosen)",
        "spec": "canonical architecture string (the linear reference: what it is)",
    },
    "per_speaker_accuracy.csv": {
        "model": "baseline name, or linear (the linear reference)",
        "kind": "baseline | reference",
        "speaker": "test speaker or recording source (the dataset's speaker id; fs<id> for UrbanSound8K)",
        "n_test_clips": "test clips of that speaker",
        "test_accuracy_mean": f"accuracy on that speaker's test clips; {_PM}",
        "seeds": "training runs averaged",
    },
    "survivors.csv": {
        "name": "model name of the survivor (nas- + a hash of its spec)",
        "spec": "canonical architecture string",
        "kept": "True: trained fully; False: dropped when thinning the front by crowding distance",
        "reason": "why it was kept (the objective extremes it holds) or dropped",
        "*": "the other columns are the search's objectives as in nas/pareto.csv (accuracy = proxy validation)",
    },
    "training_results.csv": {
        "model": "model name (baseline, nas-<hash> survivor, <name>-kd distilled student)",
        "kind": "baseline | nas (search survivor) | distilled",
        "seeds": "training runs (seeds run.seed + k)",
        "test_accuracy_mean": f"test accuracy (fraction) {_TEST}; {_PM}",
        "test_macro_f1_mean": f"test macro-F1 {_TEST}; {_PM}",
        "val_accuracy_mean": f"validation accuracy at the selected epoch; {_PM}",
        "proxy_accuracy": "the search's proxy validation accuracy of this architecture (survivors)",
        "plain_model": "distilled rows: the same architecture trained without distillation",
        "delta_test_accuracy_pts": "distilled minus plain test accuracy, points, mean over the seeds both ran",
        "delta_test_accuracy_pts_std": "its standard deviation over those seeds",
        "paired_seeds": "seeds with both a distilled and a plain run",
        "teacher": "distillation teacher (model name in the run, or a checkpoint path)",
        "epochs": "training epochs",
        "recipe": "training settings that shape the result (train.* of the first seed's run)",
        "params": "trainable parameters",
        "size_kb": "fp32 weights after BatchNorm folding, KiB",
        "macs_m": "multiply-accumulates per clip, millions",
        "spec": "canonical architecture string",
    },
    "cv_results.csv": {
        "model": "baseline name, nas-<hash> (a search survivor) or linear (the linear reference)",
        "fold": "fold number (cv/fold<i>/; its test set is named in protocol)",
        "seed": "training seed (blank for the deterministic linear reference)",
        "test_accuracy": "accuracy on that fold's test clips (never used for selection in that fold)",
        "test_macro_f1": "macro-F1 over every class of the dataset on that fold's test clips",
        "search_read_test_pct": "survivors: share (%) of this fold's test clips that the search trained or validated "
        "on (the run's single split); blank for baselines",
        "protocol": "the cross-validation protocol in words",
    },
    "cv_summary.csv": {
        "model": "baseline name, nas-<hash> (a search survivor) or linear (the linear reference)",
        "folds": "folds averaged",
        "seeds": "seeds per fold",
        "test_accuracy_mean": "test accuracy, mean over folds and seeds; *_std: sample standard deviation over them",
        "test_macro_f1_mean": "test macro-F1, mean over folds and seeds; *_std as above",
        "reference": "the model compared with (the first of --models)",
        "delta_accuracy_pts_mean": "paired difference to the reference, points, mean over the same folds and seeds",
        "wilcoxon_p": "two-sided Wilcoxon signed-rank p-value of those paired differences",
        "delta_vs_linear_pts_mean": "paired difference to the linear reference, points, fold by fold (seeds averaged "
        "within a fold)",
        "wilcoxon_p_vs_linear": "its Wilcoxon signed-rank p-value",
        "search_read_test_pct": "survivors: share (%) of the folds' test clips the search trained or validated on, "
        "mean over folds",
        "unread_folds": "survivors: folds holding no clip the search read",
        "test_accuracy_unread_folds_mean": "with survivors in the CV, every model: test accuracy over the folds "
        "holding no clip the search read (free of the search's selection bias; often one fold, so noisy)",
        "protocol": "the protocol in words, with what the survivors' figures are worth",
    },
    "quantization_results.csv": {
        "model": "model name (first seed's run)",
        "kind": "baseline | nas | distilled",
        "variant": "fp32 | int8_dynamic (weights only) | int8_static (QDQ) | int8_static_aa (accuracy-aware) | "
        "int8_qat (fake-quant fine-tuned)",
        "test_accuracy": f"accuracy of the ONNX file run in ONNX Runtime over the whole test split {_TEST}",
        "test_macro_f1": "macro-F1 of the ONNX file on the test split",
        "accuracy_delta_pts": "test accuracy minus the fp32 ONNX's, points",
        "val_accuracy": "accuracy of the ONNX file on the validation split",
        "val_accuracy_delta_pts": "validation accuracy minus the fp32 ONNX's, points (the accuracy-aware bound's)",
        "size_kb": "ONNX file size, KiB",
        "size_ratio": "fp32 ONNX size / this file's size (x smaller)",
        "latency_ms": "batch-1 latency measured on this machine in ONNX Runtime (1 thread by default): minimum over "
        "fresh sessions of the session median, ms",
        "latency_p90_ms": "90th percentile of that session's runs, ms",
        "speedup": "fp32 latency / this variant's latency",
        "predicted_latency_ms": "the latency table's prediction for table_device (another device than this machine "
        "unless collected here), on the fp32 row for an fp32 table and on the int8_static row for an INT8 table",
        "table_device": "the latency table used for predicted_latency_ms",
        "table_note": "why the table gave no prediction (another space or input shape, ...)",
        "layers_fp32": "accuracy-aware: layers kept in fp32",
        "layers_fp32_names": "their node names",
        "bound_met": "accuracy-aware: whether the validation drop is within --max-accuracy-drop",
        "parity_max_abs_diff": "fp32: largest |torch - ONNX Runtime| logit difference on real inputs",
        "teacher": "distilled models: the teacher",
        "seed": "training seed of the exported run",
        "spec": "canonical architecture string",
        "onnx": "the ONNX file, relative to the run folder (its model card: same name, .json)",
        "calibration": "static INT8: calibration method, clips, weight bits",
        "note": "what else to know about the variant",
    },
}


def write_column_legend(run_dir: Path) -> Path:
    """Write ``<run>/columns.json`` (the tables' column descriptions)."""
    path = Path(run_dir) / "columns.json"
    atomic_write_json(path, TABLES)
    return path
