"""--mode quantization end to end on the built-in data: a real SIGKILL mid-run, a resume that redoes nothing
finished, the results tables and ONNX artifacts; --mode predict on them; one clear line for bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audio_trees import write_wav

from complete_pipeline import main
from quantize.ort_eval import evaluate_onnx
from train.feature_set import load_features

REPO = Path(__file__).resolve().parents[1]
SEARCH = ["--nas-population", "4", "--nas-generations", "1", "--proxy-epochs", "1", "--max-latency-ms", "0.5",
          "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip
CONFIG = """
quantize:
  variants: [fp32, int8_static, int8_static_aa]
  survivors: 2
  calibration_clips: 32
latency:
  timing: {sessions: 1}
"""


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _mtimes(folder: Path, pattern: str) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.glob(pattern)}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """``--mode full`` on the built-in data with a tiny budget, killed with SIGKILL mid-quantization, resumed."""
    out = tmp_path_factory.mktemp("q") / "run"
    config = out.parent / "q.yaml"
    config.write_text(CONFIG)
    argv = ["--mode", "full", "--out", str(out), "--config", str(config), "--models", "dscnn", "--epochs", "1",
            *SEARCH]  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(REPO / "complete_pipeline.py"), *argv], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    results = out / "quantization"
    while time.monotonic() < deadline and not list(results.glob("*.json")):
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    trained = _mtimes(out / "models", "**/run.json")
    measured = _mtimes(results, "*.json")
    journal = (out / "nas" / "journal.jsonl").read_bytes()
    assert trained and measured
    assert main([*argv, "--resume"]) == 0
    assert _mtimes(out / "models", "**/run.json") == trained  # nothing trained again
    after = _mtimes(results, "*.json")
    assert all(after[path] == mtime for path, mtime in measured.items())  # finished variants not redone
    assert (out / "nas" / "journal.jsonl").read_bytes() == journal  # the finished search was skipped
    return out


def test_full_run_resumed_skips_finished_stages_and_reports(run):
    events = [json.loads(line) for line in (run / "stages.jsonl").read_text().splitlines()]
    starts = [e["mode"] for e in events if e["event"] == "start"]
    assert starts.count("baseline") == 1 and starts.count("nas") == 1  # skipped when resumed
    assert starts.count("quantization") == 2 and starts.count("full") == 2
    ends = {e["mode"] for e in events if e["event"] == "end"}
    assert {"baseline", "nas", "quantization", "reports", "full"} <= ends
    assert (run / "reports" / "index.html").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["nas"]["devices"] == ["epyc-avx512-2c_ort_fp32_t1"]  # the table actually used


def test_results_table_has_every_model_and_variant_re_measured(run):
    rows = _csv(run / "quantization_results.csv")
    models = {r["model"] for r in rows}
    survivors = [r for r in _csv(run / "survivors.csv") if r["kept"] == "True"]
    assert {"dscnn", *(s["name"] for s in survivors), *(f"{s['name']}-kd" for s in survivors)} == models
    for model in models:
        assert [r["variant"] for r in rows if r["model"] == model] == ["fp32", "int8_static", "int8_static_aa"]
    features = load_features(run)
    for r in rows:
        onnx_file = run / r["onnx"]
        assert onnx_file.is_file() and onnx_file.with_suffix(".json").is_file()
        assert float(r["size_kb"]) == pytest.approx(onnx_file.stat().st_size / 1024)
        # latency_ms is the best session's median, latency_p90_ms that session's p90
        assert 0 < float(r["latency_ms"]) <= float(r["latency_p90_ms"])
        assert 0 <= float(r["test_accuracy"]) <= 1
    for aa in (r for r in rows if r["variant"] == "int8_static_aa" and r["layers_fp32"] == "0"):
        static = next(r for r in rows if r["model"] == aa["model"] and r["variant"] == "int8_static")
        assert aa["latency_ms"] == static["latency_ms"] and "the int8_static graph" in aa["note"]  # one file
    fp32 = next(r for r in rows if r["model"] == "dscnn" and r["variant"] == "fp32")
    assert float(fp32["parity_max_abs_diff"]) < 1e-3
    static = next(r for r in rows if r["model"] == "dscnn" and r["variant"] == "int8_static")
    assert float(static["size_kb"]) < float(fp32["size_kb"])
    # the accuracy in the table is the ONNX file's own, over the whole test split
    assert float(static["test_accuracy"]) == evaluate_onnx(run / static["onnx"], features, "test")["accuracy"]


def test_training_table_proxy_fidelity_and_distillation(run):
    rows = {r["model"]: r for r in _csv(run / "training_results.csv")}
    kd = [r for r in rows.values() if r["kind"] == "distilled"]
    assert kd and all(r["plain_model"] in rows and r["paired_seeds"] == "1" for r in kd)
    assert all(r["teacher"] for r in kd)
    assert all("epochs" in r["recipe"] and "mixup" in r["recipe"] for r in rows.values())  # the recipe, recorded
    summary = json.loads((run / "quantization_results.json").read_text())
    assert summary["proxy_fidelity"]["n"] == len([r for r in rows.values() if r["kind"] == "nas"])
    assert summary["machine"]["cpu_model"] and summary["teacher"]["name"] in rows
    assert "proxy_accuracy" in rows[kd[0]["plain_model"]] and rows[kd[0]["plain_model"]]["proxy_accuracy"]


def test_predict_matches_the_onnx_evaluation(run, tmp_path, capsys):
    features = load_features(run)
    rows = features.splits.test[:6]
    files = [features.paths[i] for i in rows]
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    model = run / "onnx" / "dscnn.int8_static.onnx"
    out = tmp_path / "pred.csv"
    assert main(["--mode", "predict", "--model", str(model), *files, str(bad), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 file(s)" in printed and "notes.wav" in printed
    predicted = {r["path"]: r["label"] for r in _csv(out) if r["label"]}
    from quantize.ort_eval import onnx_logits

    x, _ = features.batch(rows)
    expected = onnx_logits(model, x).argmax(axis=1)
    assert [predicted[p] for p in files] == [features.classes[k] for k in expected]


def test_predict_front_end_matches_the_cache(run):
    from pipeline.predict_stage import features_of
    from quantize.model_card import read_card

    features = load_features(run)
    card = read_card(run / "onnx" / "dscnn.fp32.onnx")
    for i in features.splits.val[:3]:
        x, reason = features_of(Path(features.paths[i]), card)
        assert reason is None
        expected, _ = features.batch([i])
        assert abs(x - expected).max() < 1e-5


def test_folder_without_models_or_search(cli_error, tmp_path, capsys):
    out = tmp_path / "feat"
    assert main(["--mode", "features", "--out", str(out), "--no-progress"]) == 0
    msg = cli_error(["--mode", "quantization", "--out", str(out)])
    assert "no trained baselines and no search front" in msg and "--mode baseline" in msg
    assert "holds no features" in cli_error(["--mode", "quantization", "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(["--mode", "quantization", "--no-progress"]) == 2  # no --out at all
    assert "works on an existing run folder" in capsys.readouterr().err


def test_bad_quantization_settings(cli_error, run, tmp_path):
    assert "must be >= 0 accuracy points" in cli_error(
        ["--mode", "quantization", "--out", str(run), "--max-accuracy-drop", "-1"]
    )
    msg = cli_error(["--mode", "quantization", "--out", str(run), "--teacher", "huge"])
    assert "'huge' is not a trained model of this run" in msg and "dscnn" in msg


def test_teacher_of_other_classes_is_refused(cli_error, run, tmp_path):
    other = tmp_path / "other"
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for k in range(12):
            write_wav(root / cls / f"{cls}{k}.wav", 300 + 50 * k + 400 * (cls == "b"))
    argv = ["--mode", "baseline", "--models", "dscnn", "--epochs", "1", "--dataset-path", str(root), "--split",
            "stratified", "--out", str(other), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    msg = cli_error(
        ["--mode", "quantization", "--out", str(run), "--teacher", str(other / "models" / "dscnn" / "best.pt")]
    )
    assert "trained on 2 classes" in msg


def test_predict_bad_input(cli_error, run, tmp_path):
    lonely = tmp_path / "m.onnx"
    shutil.copy(run / "onnx" / "dscnn.fp32.onnx", lonely)
    assert "no model card" in cli_error(["--mode", "predict", "--model", str(lonely), str(tmp_path)])
    assert "needs --model" in cli_error(["--mode", "predict", str(tmp_path)])
    model = str(run / "onnx" / "dscnn.fp32.onnx")
    assert "needs audio files" in cli_error(["--mode", "predict", "--model", model])
    (tmp_path / "x.txt").write_text("x")
    assert "none of the" in cli_error(["--mode", "predict", "--model", model, str(tmp_path / "x.txt")])


def test_a_variant_that_fails_is_recorded_and_the_stage_goes_on(run, tmp_path, monkeypatch, capsys):
    """An INT8 file ONNX Runtime refuses fails that variant alone, once, with its reason.

    The stand-in quantizer writes the fp32 graph with an operator ORT does not know, as a
    quantizer of another onnx/onnxruntime version can (QLinearAdd with non-scalar scales did).
    """
    import onnx

    import pipeline.model_variants as model_variants

    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    for result in (copy / "quantization").glob("*.int8_static.json"):
        result.unlink()
    calls = []

    def refused_static(fp32_path, out_path, *args, **kwargs):
        calls.append(out_path)
        model = onnx.load(fp32_path)
        model.graph.node[0].op_type = "NoSuchQuantizedOp"
        onnx.save(model, out_path)

    monkeypatch.setattr(model_variants, "quantize_static_int8", refused_static)
    argv = ["--mode", "quantization", "--out", str(copy), "--config", str(run.parent / "q.yaml"), "--epochs", "1",
            "--resume", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    models = {r["model"] for r in _csv(copy / "quantization_results.csv")}
    assert len(calls) == len(models) and "int8_static FAILED (InvalidGraph" in printed
    rows = _csv(copy / "quantization_results.csv")
    assert {r["variant"] for r in rows} == {"fp32", "int8_static_aa"}  # the rest stands
    failed = json.loads((copy / "quantization_results.json").read_text())["failed_variants"]
    assert {f["model"] for f in failed} == models and all(f["variant"] == "int8_static" for f in failed)
    assert not list((copy / "onnx").glob("*.int8_static.onnx"))  # no torn file passes for the variant
    stored = json.loads((copy / "quantization" / "dscnn.int8_static.json").read_text())
    assert "NoSuchQuantizedOp" in stored["failed"] and stored["settings"]["version"]

    assert main(argv) == 0 and len(calls) == len(models)  # the same settings: not tried again
    assert "delete quantization/dscnn.int8_static.json" in capsys.readouterr().out
    assert main(["--mode", "reports", "--out", str(copy), "--no-progress"]) == 0
    assert "int8_static of dscnn failed and is left out" in (copy / "reports" / "index.html").read_text()
    monkeypatch.undo()
    (copy / "quantization" / "dscnn.int8_static.json").unlink()
    assert main(argv) == 0
    rows = _csv(copy / "quantization_results.csv")
    assert [r["variant"] for r in rows if r["model"] == "dscnn"] == ["fp32", "int8_static", "int8_static_aa"]
