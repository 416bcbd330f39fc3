"""Reports of unusual run folders: not a run, an empty or torn journal, a single candidate or feasible point, a
single objective, random search only, several devices, non-ASCII and very long names; a search still running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from report_runs import (
    DEVICE,
    candidate,
    latency_name,
    random_records,
    read_json,
    standard_problem,
    write_base,
    write_search,
    write_survivors,
    write_trained,
)

from common.errors import UserError
from nas.problem import Constraint, ObjectiveSpec
from reports.generate import generate_reports
from reports.latex import latex_table
from reports.run_data import load_run
from reports.tables import model_caption, model_comparison

LAT = latency_name(DEVICE)


def test_a_folder_that_is_not_a_run_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError) as missing:
        generate_reports(tmp_path / "nope")
    assert "does not exist" in str(missing.value) and "\n" not in str(missing.value)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError) as not_run:
        generate_reports(tmp_path)
    assert "not a run folder" in str(not_run.value) and "\n" not in str(not_run.value)
    run = tmp_path / "run"
    write_base(run)
    with pytest.raises(UserError):
        generate_reports(run, compare=[tmp_path / "other"])


def test_empty_journal_reports_what_is_missing(tmp_path):
    run = tmp_path / "run"
    write_base(run)
    objectives, constraints = standard_problem()
    write_search(run, [], objectives, constraints, generations=3)
    result = generate_reports(run)
    assert result.figures == {}
    assert any("journal.jsonl is empty" in m and "--resume" in m for m in result.missing), result.missing
    assert any("--mode quantization" in m for m in result.missing)
    assert any("--mode baseline" in m for m in result.missing)
    assert result.html.is_file() and "Not in this run folder yet" in result.html.read_text(encoding="utf-8")
    assert read_json(result.tables["all_results.json"])["search"]["candidates"] == 0


def test_torn_journal_with_a_single_candidate(tmp_path):
    """A search killed mid-write in generation 0: one record, a torn line, history of nothing yet."""
    run = tmp_path / "run"
    write_base(run)
    objectives, constraints = standard_problem()
    record = candidate("c8k3s1-h0d0", 0, {"accuracy": 0.5, "macro_f1": 0.4, LAT: 0.2, "size_kb": 30.0},
                       objectives, constraints)  # fmt: skip
    write_search(run, [record], objectives, constraints, generations=4, history_until=-1)
    with open(run / "nas" / "journal.jsonl", "a") as f:
        f.write('{"format_version": 1, "key": "c16k3s1-h0d0", "gen')  # cut off by the kill
    (run / "nas" / "history.csv").write_text("")  # the first generation never finished
    result = generate_reports(run)
    assert {"pareto_frontier", "constraint_feasibility"} <= set(result.figures), result.notes
    assert "nas_evolution" not in result.figures
    assert any("torn last line" in n for n in result.notes), result.notes
    assert any("single feasible candidate" in n for n in result.notes), result.notes
    assert any("0 of 5 generations" in m and "--resume" in m for m in result.missing), result.missing
    assert not any("not drawn" in n for n in result.notes), result.notes
    # the report reads, it does not repair: the torn line is still there for --resume to handle
    assert (run / "nas" / "journal.jsonl").read_text().endswith('"gen')


def test_random_search_on_two_devices_with_odd_names(tmp_path):
    devices = [DEVICE, "rpi4_ort_fp32_t1"]
    run = tmp_path / "run"
    write_base(run, dataset="Übung–daten")
    objectives, constraints = standard_problem(max_latency_ms=1.0, devices=devices, size=False)
    long_key = "c8k3s1-" + "-".join(f"ir{8 * i}k5s1e6r3se" for i in range(1, 12)) + "-h256d50"
    keys = [long_key, "c12k3s1-ds16k3s1-h0d20-ü", "c$16k3s1_{x}&y"]
    records = random_records(24, 3, objectives, constraints, seed=3, keys=keys)
    trained = [r for r in records if r.status == "ok"]
    write_search(run, records, objectives, constraints, strategy="random", devices=devices, generations=2)
    names = ["nas-" + "ü" * 3 + "-with_a_very_long_name&more", "nas-b", "nas-c"]
    write_survivors(run, list(zip(names, [r.key for r in trained[:3]], strict=False)))
    result = generate_reports(run)
    assert not any("not drawn" in n for n in result.notes), result.notes
    assert {"pareto_frontier", "pareto_pairs", "nas_evolution", "constraint_feasibility"} <= set(result.figures)
    with Image.open(result.figures["pareto_frontier"][1]) as image:
        assert image.width > 2 * 3.4 * 300, "one panel per device and one for size"
    with Image.open(result.figures["pareto_pairs"][1]) as image:
        assert image.width > 2.5 * 3.4 * 300, "three pairs of three objectives"
    assert any("only random search runs" in n for n in result.notes), result.notes
    page = result.html.read_text(encoding="utf-8")
    assert "Übung–daten" in page
    search = read_json(result.tables["all_results.json"])["search"]
    assert search["devices"] == devices and search["strategy"] == "random"
    assert search["pareto_set"] and search["candidates"] == 24


def test_odd_model_names_in_the_tables(tmp_path):
    """Non-ASCII, LaTeX-special and very long names: escaped and shortened in LaTeX, kept whole in CSV and HTML."""
    write_base(tmp_path)
    long_spec = "c8k3s1-" + "-".join(f"ir{8 * i}k5s1e6r3se" for i in range(1, 12)) + "-h256d50"
    models = [{"name": "tiny_ü&#1", "kind": "baseline", "spec": "c16k3s1-h0d0", "accuracy": 0.7},
              {"name": "nas-" + "ü" * 3 + "-with_a_very_long_name&more", "kind": "nas", "spec": long_spec,
               "accuracy": 0.6, "proxy": 0.5},
              {"name": "nas-b", "kind": "nas", "spec": "c8k3s1-h0d0", "accuracy": 0.5, "proxy": 0.45},
              {"name": "nas-c", "kind": "nas", "spec": "c12k3s1-h0d0", "accuracy": 0.65, "proxy": 0.55}]  # fmt: skip
    write_trained(tmp_path, models, variants=("fp32", "int8_static"), seeds=1)
    run = load_run(tmp_path)
    table = model_comparison(run)
    assert set(table["model"]) == {m["name"] for m in models}
    tex = latex_table(table, model_caption(run, table))
    assert "tiny\\_ü\\&\\#1" in tex and "\\ldots{}" in tex and long_spec not in tex
    assert "over 1 seed (PyTorch)" in tex
    fidelity = run.quantization_meta["proxy_fidelity"]
    assert fidelity["n"] == 3 and fidelity["val"]["tau"] is not None


def test_single_objective_and_one_feasible_point(tmp_path):
    run = tmp_path / "run"
    write_base(run)
    objectives = [ObjectiveSpec("accuracy", "max", 1.0, 0.0)]
    constraints = [Constraint.at_most("size_kb", 100.0)]
    records = [
        candidate("c8k3s1-h0d0", 0, {"accuracy": 0.6, "size_kb": 50.0, LAT: 0.1}, objectives, constraints),
        candidate("c64k3s1-h0d0", 0, {"accuracy": 0.7, "size_kb": 400.0, LAT: 0.9}, objectives, constraints,
                  trained=False),
        candidate("c96k3s1-h0d0", 1, {"accuracy": 0.8, "size_kb": 900.0, LAT: 2.0}, objectives, constraints,
                  trained=False),
    ]  # fmt: skip
    write_search(run, records, objectives, constraints, generations=1)
    result = generate_reports(run)
    assert "pareto_pairs" not in result.figures
    assert any("pareto_pairs: 1 objective(s), no pairs" in n for n in result.notes), result.notes
    assert any("single feasible candidate" in n for n in result.notes), result.notes
    assert {"pareto_frontier", "nas_evolution", "constraint_feasibility"} <= set(result.figures)
    history = pd.read_csv(result.tables["nas_history.csv"])
    assert list(history["generation"]) == [0, 1]


def test_a_report_never_imports_torch(tmp_path):
    """Every module of the package is imported by ``reports.generate`` (no lazy imports), so a folder without
    figures to draw is enough to see what a report loads."""
    run = tmp_path / "run"
    write_base(run)
    code = (f"import sys; from reports.generate import generate_reports; r = generate_reports({str(run)!r}); "
            "print(len(r.figures), 'torch' in sys.modules, 'onnxruntime' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures, torch, ort = done.stdout.split()
    assert int(figures) == 0 and torch == "False" and ort == "False"


def test_baselines_only(tmp_path):
    """A folder with trained baselines and nothing else: their sizes are drawn, the rest is listed as missing."""
    write_base(tmp_path)
    models = [{"name": "tiny", "kind": "baseline", "spec": "c16k3s1-h0d0", "accuracy": 0.7},
              {"name": "dscnn", "kind": "baseline", "spec": "c64k3s1-h0d0", "accuracy": 0.6}]  # fmt: skip
    write_trained(tmp_path, models)
    for name in ("quantization_results.csv", "quantization_results.json", "training_results.csv"):
        (tmp_path / name).unlink()
    result = generate_reports(tmp_path)
    assert list(result.figures) == ["pareto_frontier"]
    assert any("no latency yet" in n for n in result.notes), result.notes
    assert [m.split(":")[0] for m in result.missing] == [
        "search results (Pareto front, hypervolume per generation)",
        "quantization results (survivors fully trained, INT8 variants, measured latency, proxy fidelity)",
        "latency validation (table prediction vs measurement)",
    ]
    csv = pd.read_csv(result.tables["model_comparison.csv"])
    assert csv["model"].tolist() == ["tiny", "dscnn"] and (csv["latency_source"] == "not measured").all()
    tex = result.tables["model_comparison.tex"].read_text(encoding="utf-8")
    assert "Latency" not in tex and "\\begin{tabular}{llrrrrr}" in tex  # a column of dashes is left out
