"""What the reports compute, apart from drawing: fronts and their steps, feasibility, hypervolume curves,
the model table, rounding and LaTeX escaping, metric names and devices."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from report_runs import DEVICE, candidate, latency_name, standard_problem, write_base, write_search, write_trained

from nas.problem import Constraint, ObjectiveSpec
from reports import numbers
from reports.evolution import feasibility_by_generation, hypervolume_curves, violation_counts
from reports.fronts import binding_constraint, front_2d, objective_pairs, pair_spec, pareto_keys
from reports.latex import escape, latex_table
from reports.metrics import constraint_text, device_of, metric_info
from reports.run_data import load_run, missing_parts
from reports.tables import model_caption, model_comparison

LAT = latency_name(DEVICE)
ACC = ObjectiveSpec("accuracy", "max", 1.0, 0.0)
LATENCY = ObjectiveSpec(LAT, "min", 0.0, 2.0)


def _records(points, constraints=()):
    objectives = [ACC, LATENCY]
    return [candidate(f"k{i}", 0, {"accuracy": a, LAT: lat}, objectives, constraints)
            for i, (a, lat) in enumerate(points)]  # fmt: skip


def test_front_2d_is_the_staircase_of_non_dominated_points():
    records = _records([(0.5, 0.1), (0.7, 0.3), (0.6, 0.5), (0.9, 1.0), (0.9, 1.0), (0.4, 0.2)])
    front = front_2d(records, LATENCY, ACC)
    assert front.points[["x", "y"]].values.tolist() == [[0.1, 0.5], [0.3, 0.7], [1.0, 0.9]]
    xs, ys = front.steps("min", extend_to=2.0)
    assert xs.tolist() == [0.1, 0.3, 1.0, 2.0] and ys.tolist() == [0.5, 0.7, 0.9, 0.9]
    assert front.steps("min", extend_to=0.5)[0].tolist() == [0.1, 0.3, 1.0]  # not extended backwards


def test_front_2d_keeps_feasible_points_only():
    constraints = [Constraint.at_most(LAT, 0.6)]
    records = _records([(0.5, 0.1), (0.9, 1.0)], constraints)
    assert front_2d(records, LATENCY, ACC).points["key"].tolist() == ["k0"]
    assert binding_constraint(records[1]) == f"{LAT}<=0.6" and binding_constraint(records[0]) is None
    assert pareto_keys(records, [ACC, LATENCY]) == ["k0"]


def test_objective_pairs_put_quality_on_y():
    size = ObjectiveSpec("size_kb", "min", 0.0, 100.0)
    pairs = objective_pairs([ACC, LATENCY, size])
    assert [(x.name, y.name) for x, y in pairs] == [(LAT, "accuracy"), ("size_kb", "accuracy"), (LAT, "size_kb")]
    assert pair_spec("accuracy", "max").direction == "max"


def test_feasibility_per_generation_and_binding_constraints(tmp_path):
    objectives, constraints = standard_problem(max_latency_ms=1.0)
    constraints.append(Constraint.at_most("size_kb", 100.0))
    records = [
        candidate("a", 0, {"accuracy": 0.5, LAT: 0.5, "size_kb": 50.0}, objectives, constraints),
        candidate("b", 0, {LAT: 3.0, "size_kb": 120.0}, objectives, constraints, trained=False),  # latency binds
        candidate("c", 1, {LAT: 1.1, "size_kb": 300.0}, objectives, constraints, trained=False),  # size binds
        candidate("d", 1, {"accuracy": 0.6, LAT: 0.4, "size_kb": 60.0}, objectives, constraints),
    ]
    write_base(tmp_path)
    write_search(tmp_path, records, objectives, constraints)
    run = load_run(tmp_path)
    table = feasibility_by_generation(run)
    assert table["candidates"].tolist() == [2, 2] and table["feasible"].tolist() == [1, 1]
    assert table["feasible_share"].tolist() == [0.5, 0.5]
    assert table[f"{LAT}<=1"].tolist() == [1, 0] and table["size_kb<=100"].tolist() == [0, 1]
    counts = violation_counts(run).set_index("constraint")
    assert counts.loc[f"{LAT}<=1", "violated"] == 2 and counts.loc[f"{LAT}<=1", "binding"] == 1
    assert counts.loc["size_kb<=100", "violated"] == 2 and counts.loc["size_kb<=100", "binding"] == 1


def test_hypervolume_curves_group_strategies_and_refuse_other_references(tmp_path):
    objectives, constraints = standard_problem()
    runs = []
    for name, strategy, seed, scale in (("a", "nsga2", 0, 1.0), ("b", "nsga2", 1, 0.5), ("c", "random", 0, 0.3)):
        folder = tmp_path / name
        write_base(folder)
        records = [candidate(f"{name}{g}", g, {"accuracy": 0.3 + 0.2 * g * scale, LAT: 0.5, "size_kb": 50.0},
                             objectives, constraints) for g in range(3)]  # fmt: skip
        write_search(folder, records, objectives, constraints, strategy=strategy, seed=seed)
        runs.append(load_run(folder))
    other = tmp_path / "other"
    write_base(other)
    wider = [ObjectiveSpec("accuracy", "max", 1.0, 0.0), ObjectiveSpec(LAT, "min", 0.0, 9.0)]
    write_search(other, [candidate("o", 0, {"accuracy": 0.5, LAT: 0.5}, wider, [])], wider)
    curves = hypervolume_curves([*runs, load_run(other)])
    assert curves.strategies == ["nsga2", "random"]
    assert len(curves.left_out) == 1 and "other hypervolume reference" in curves.left_out[0]
    nsga = curves.by_strategy[curves.by_strategy["strategy"] == "nsga2"]
    nsga_runs = curves.runs[curves.runs["strategy"] == "nsga2"]
    first = nsga_runs.pivot(index="generation", columns="run", values="hypervolume")
    assert nsga["mean"].to_numpy() == pytest.approx(first.mean(axis=1).to_numpy())
    assert nsga["std"].to_numpy() == pytest.approx(first.std(axis=1, ddof=1).to_numpy())
    assert (nsga["n_runs"] == 2).all()


def test_model_table_takes_each_number_from_its_source(tmp_path):
    write_base(tmp_path)
    models = [{"name": "tiny", "kind": "baseline", "spec": "c16k3s1-h0d0", "accuracy": 0.8},
              {"name": "nas-abc", "kind": "nas", "spec": "c8k3s1-h0d0", "accuracy": 0.6, "proxy": 0.55},
              {"name": "nas-abc-kd", "kind": "distilled", "spec": "c8k3s1-h0d0", "accuracy": 0.65}]  # fmt: skip
    write_trained(tmp_path, models, variants=("fp32", "int8_static"), seeds=3)
    run = load_run(tmp_path)
    table = model_comparison(run)
    assert table[["model", "variant"]].values.tolist() == [
        ["tiny", "fp32"], ["tiny", "int8_static"], ["nas-abc", "fp32"], ["nas-abc", "int8_static"],
        ["nas-abc-kd", "fp32"], ["nas-abc-kd", "int8_static"],
    ]  # fmt: skip
    fp32 = table.iloc[0]
    assert fp32["test_accuracy_pct"] == pytest.approx(80.0) and fp32["test_accuracy_std_pct"] == pytest.approx(1.0)
    assert fp32["seeds"] == 3 and fp32["accuracy_source"].startswith("PyTorch")
    int8 = table.iloc[1]
    assert int8["test_accuracy_pct"] == pytest.approx(79.0) and math.isnan(int8["test_accuracy_std_pct"])
    assert int8["seeds"] == 1 and int8["accuracy_source"].startswith("ONNX Runtime")
    assert int8["size_source"] == "ONNX file (int8_static)" and int8["latency_source"].startswith("measured: AMD EPYC")
    assert fp32["table_device"] == DEVICE and pd.isna(int8["table_device"])
    assert table.iloc[2]["proxy_val_accuracy_pct"] == pytest.approx(55.0)
    caption = model_caption(run, table)
    assert "over 3 seeds (PyTorch); INT8 rows the first seed's" in caption
    assert "measured in ONNX Runtime on AMD EPYC" in caption
    tex = latex_table(table, caption)
    assert "\\textbf{80.0\\,$\\pm$\\,1.0}" in tex
    assert missing_parts(run)[0].startswith("search results")


def test_the_linear_reference_leads_the_table_and_is_never_bold(tmp_path):
    write_base(tmp_path)
    models = [{"name": "tiny", "kind": "baseline", "spec": "c16k3s1-h0d0", "accuracy": 0.8}]
    write_trained(tmp_path, models, variants=("fp32", "int8_static"), seeds=3, linear=0.9)
    run = load_run(tmp_path)
    table = model_comparison(run)
    assert table[["model", "kind", "variant"]].values.tolist() == [
        ["linear", "reference", "fp32"], ["tiny", "baseline", "fp32"], ["tiny", "baseline", "int8_static"],
    ]  # fmt: skip
    linear = table.iloc[0]
    assert linear["test_accuracy_pct"] == pytest.approx(90.0)
    assert linear["latency_source"].startswith("none: the linear")
    tex = latex_table(table, model_caption(run, table))
    assert "90.0" in tex and "\\textbf{90.0" not in tex  # the yardstick, not a contender
    assert "\\textbf{80.0\\,$\\pm$\\,1.0}" in tex and "\\textbf{1.9}" not in tex  # tiny is the best model


def test_model_table_without_quantization_uses_the_table_prediction(tmp_path):
    objectives, constraints = standard_problem()
    write_base(tmp_path)
    write_search(tmp_path, [candidate("c8k3s1-h0d0", 0, {"accuracy": 0.5, LAT: 0.25, "size_kb": 30.0},
                                      objectives, constraints)], objectives, constraints)  # fmt: skip
    write_trained(tmp_path, [{"name": "nas-abc", "kind": "nas", "spec": "c8k3s1-h0d0", "accuracy": 0.6}])
    for name in ("quantization_results.csv", "quantization_results.json"):
        (tmp_path / name).unlink()
    table = model_comparison(load_run(tmp_path))
    assert table["variant"].tolist() == ["fp32"]
    assert table.iloc[0]["latency_ms"] == pytest.approx(0.25) and table.iloc[0]["latency_source"] == (
        f"table prediction: {DEVICE}"
    )
    tex = latex_table(table, "x")
    assert "\\dag" not in tex  # every latency has the same source: nothing to mark


def test_rounding_and_escaping():
    assert numbers.significant(0.000749123) == "0.000749" and numbers.significant(1234.5) == "1234"
    assert numbers.significant(float("nan")) == numbers.DASH and numbers.significant(None) == numbers.DASH
    assert numbers.mean_std(99.333, 0.378) == "99.3 ± 0.4" and numbers.mean_std(99.3, float("nan")) == "99.3"
    assert numbers.size(92.44) == "92.4" and numbers.size(488.1) == "488" and numbers.thousands(124474) == "124.5"
    assert escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        "a\\_b\\&c\\%d\\$e\\#f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k"
    )
    assert escape("± –") == "$\\pm$ --"


def test_metric_names_units_and_devices():
    assert device_of(latency_name("rpi4-b_ort"), ["x", "rpi4-b_ort"]) == "rpi4-b_ort"
    assert device_of("latency_ms_unknown") == "unknown"
    info = metric_info("accuracy")
    assert info.factor == 100 and "proxy validation" in info.label and info.direction == "max"
    latency = metric_info(latency_name("rpi4"), ["rpi4"])
    assert "ms" in latency.label and "rpi4" in latency.label and "table prediction" in latency.label
    assert "measured" in metric_info("latency_ms_local").label
    assert constraint_text(latency_name("rpi4"), "<=", 5.0, ["rpi4"]) == "latency ≤ 5 ms (rpi4)"
    assert constraint_text("accuracy", ">=", 0.8) == "accuracy ≥ 80 %"
    assert constraint_text("size_kb", "<=", 256) == "size ≤ 256 KiB"


def test_int8_variants_slower_than_fp32_are_named_under_the_figure():
    from reports.figures_quantization import slower_than_fp32

    rows = [("a", "fp32", 1.0), ("a", "int8_dynamic", 5.0), ("a", "int8_static", 0.5),
            ("b", "fp32", 0.1), ("b", "int8_dynamic", 0.9), ("b", "int8_static", 0.3),
            ("c", "fp32", 2.0), ("c", "int8_dynamic", None), ("c", "int8_static", 1.0)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["model", "variant", "latency_ms"])
    line = slower_than_fp32(frame)
    assert line.startswith("Slower than fp32, as measured: int8_dynamic for 2 of 2 model(s); int8_static for b.")
    assert slower_than_fp32(frame[frame["model"] == "a"].query("variant != 'int8_dynamic'")) is None
