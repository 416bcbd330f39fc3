"""Metrics on hand-computed cases, and mean ± std aggregation over runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train.metrics import aggregate_metrics, classification_metrics

Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])
CLASSES = ["zero", "one", "two"]


def test_hand_computed_case():
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES, speakers=np.array(["a", "b", "a", "b", "a", "b"]))
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    # zero: tp 1, fp 1, fn 1; one: tp 2, fp 1, fn 0; two: tp 1, fp 0, fn 1
    assert m["per_class"]["zero"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["one"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["per_class"]["two"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["confusion_matrix"] == {"labels": CLASSES, "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 1]]}
    # speaker a: rows 0, 2, 4 all right; speaker b: rows 1, 3, 5, only row 3 right
    assert m["per_speaker"] == {"a": {"accuracy": 1.0, "n": 3}, "b": {"accuracy": pytest.approx(1 / 3), "n": 3}}
    json.dumps(m)  # plain data


def test_absent_class_keeps_its_row_but_not_its_f1():
    m = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 1]), ["a", "b", "never"])
    assert m["macro_f1"] == 1.0  # averaged over the classes that occur
    assert m["per_class"]["never"]["support"] == 0
    assert m["confusion_matrix"]["matrix"][2] == [0, 0, 0]
    assert "per_speaker" not in m
    assert m["absent_classes"] == ["never"]


def test_predicting_an_absent_class_does_not_change_which_classes_are_averaged():
    """sklearn's default averages the classes in y_true or y_pred: two models would average over different sets."""
    y_true = np.array([0, 0, 1, 1])
    never = classification_metrics(y_true, np.array([0, 1, 1, 1]), ["a", "b", "c"])
    stray = classification_metrics(y_true, np.array([0, 2, 1, 1]), ["a", "b", "c"])  # c has no example
    assert never["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert stray["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)  # a: recall 1/2; b: perfect; c not averaged


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-empty"):
        classification_metrics(np.array([], dtype=int), np.array([], dtype=int), CLASSES)
    with pytest.raises(ValueError, match="equal"):
        classification_metrics(np.array([0, 1]), np.array([0]), CLASSES)
    with pytest.raises(ValueError, match="at least one run"):
        aggregate_metrics([])


def test_mean_and_sample_std_over_seeds():
    runs = [
        classification_metrics(Y_TRUE, Y_PRED, CLASSES, np.array(list("ababab"))),
        classification_metrics(Y_TRUE, Y_TRUE, CLASSES, np.array(list("ababab"))),
    ]
    agg = aggregate_metrics(runs)
    assert agg["n_runs"] == 2
    assert agg["accuracy"]["mean"] == pytest.approx((4 / 6 + 1) / 2)
    assert agg["accuracy"]["std"] == pytest.approx(np.std([4 / 6, 1.0], ddof=1))
    assert agg["per_class"]["one"]["f1"] == {"mean": pytest.approx(0.9), "std": pytest.approx(0.1414213562), "n": 2}
    assert agg["per_speaker"]["b"]["accuracy"]["mean"] == pytest.approx(2 / 3)
    assert "confusion_matrix" not in agg  # lists are not averaged
    json.dumps(agg)


def test_single_run_has_zero_std_and_clean_means():
    assert aggregate_metrics([{"accuracy": 0.7}])["accuracy"] == {"mean": 0.7, "std": 0.0, "n": 1}
    assert aggregate_metrics([{"accuracy": 0.8}, {"accuracy": 0.9}])["accuracy"]["mean"] == 0.85
