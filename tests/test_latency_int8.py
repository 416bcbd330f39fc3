"""INT8 latency tables: op graphs quantized with the project's recipe, timed as the shipped models run them."""

from __future__ import annotations

import json
import random

import numpy as np
import onnx
import pytest

from common.errors import UserError
from complete_pipeline import main
from latency_tables.collect import collect_table
from latency_tables.config import LatencyConfig
from latency_tables.keys import parse_op_key, space_ops, spec_ops
from latency_tables.layout import export_onnx, prepare_onnx
from latency_tables.op_models import in_context, prepare
from latency_tables.ort_timing import TimingConfig, make_session, random_feeds
from latency_tables.precision import deployed_graph
from latency_tables.table import load_table
from search_spaces import create_search_space
from tests.latency_fixtures import write_table

QUICK = LatencyConfig(calibration_models=0, precision="int8",
                      timing=TimingConfig(sessions=1, runs=10, min_runs=3, target_ms=3))  # fmt: skip
SPACE = create_search_space("mel2d")
SHAPE = (1, 40, 101)
KEYS = [
    "stem_1x40x101_16_k3x3_s2_relu",
    "conv_16x20x51_32_k3x3_s1_relu",
    "dw_64x20x51_k5x5_s2_relu",
    "pw_16x20x51_64_relu",
    "pw_64x20x51_16_linear_sum",
    "add_16x20x51",
    "se_64x10x26",
    "head_64x5x13_c10_h128",
    "head_64x5x13_c10",
    "stem_1x16000_32_k80_s4_relu",
    "conv_16x4000_32_k3_s1_relu",
    "pool_32x4000_p4",
    "head_32x250_c10",
]


def _types(model: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(model).graph.node]


def _nodes(model: bytes) -> list[tuple[str, str, int]]:
    """(domain, op type, number of inputs) per node: the kernels ORT runs, NHWC contrib ops included."""
    return [(n.domain, n.op_type, len(n.input)) for n in onnx.load_from_string(model).graph.node]


def _torch_int8(key: str) -> bytes:
    """The op's torch context module exported and quantized as the quantization stage quantizes a model."""
    op = parse_op_key(key)
    module, shapes, _, _ = in_context(op)
    quantized = deployed_graph(export_onnx(module, *shapes), "int8")
    return prepare_onnx(quantized, inputs=op.kind != "stem", outputs=op.kind != "head")


@pytest.mark.parametrize("key", KEYS)
def test_int8_op_graph_runs_the_integer_kernels_of_the_recipe_applied_to_the_torch_module(key):
    direct = prepare(parse_op_key(key), precision="int8")
    assert _nodes(direct.model) == _nodes(_torch_int8(key))
    assert {"QLinearConv", "QGemm"} & set(_types(direct.model))  # integer kernels, not fp32 convolutions
    assert "Conv" not in _types(direct.model)


def test_int8_op_graphs_of_a_random_sample_of_the_space_match_the_recipe():
    ops = sorted(space_ops(SPACE, 10, SHAPE), key=lambda o: o.key)
    for op in random.Random(0).sample(ops, 24):
        assert _nodes(prepare(op, precision="int8").model) == _nodes(_torch_int8(op.key)), op.key


def test_int8_boundaries_are_stripped_except_the_model_input_and_output():
    conv = onnx.load_from_string(prepare(parse_op_key("conv_16x20x51_32_k3x3_s1_relu"), precision="int8").model)
    assert [i.type.tensor_type.elem_type for i in conv.graph.input] == [onnx.TensorProto.UINT8]
    assert _types(conv.SerializeToString()) == ["QLinearConv", "QLinearConv"]  # no quantize/transpose around
    stem = prepare(parse_op_key("stem_1x40x101_16_k3x3_s2_relu"), precision="int8").model
    assert _types(stem)[:2] == ["QuantizeLinear", "Transpose"]  # every model quantizes its float input once
    head = prepare(parse_op_key("head_64x5x13_c10"), precision="int8").model
    assert _types(head)[-1] == "DequantizeLinear"  # and dequantizes its logits once
    session = make_session(prepare(parse_op_key("add_16x20x51"), precision="int8").model, 1, "disable")
    feeds = random_feeds(session)
    assert all(v.dtype == np.uint8 for v in feeds.values())
    assert session.run(None, feeds)[0].dtype == np.uint8


def test_int8_collection_records_its_precision_and_is_never_used_as_fp32(tmp_path):
    spec = SPACE.parse("c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0")
    ops = spec_ops(SPACE, spec, 10, SHAPE)
    report = collect_table(QUICK, "dev_int8", SHAPE, tmp_path, progress=False, ops=ops)
    assert report.coverage == 1.0 and not report.failed
    table = load_table(tmp_path / "dev_int8.csv")
    assert table.precision == "int8" and table.channel_block == 1
    assert all(ms > 0 for ms in table.latency_ms.values())
    assert table.predict(spec).latency_ms > 0
    table.check_precision("int8")
    with pytest.raises(UserError, match="times int8 models, not fp32"):
        table.check_precision("fp32")
    fp32 = LatencyConfig(calibration_models=0, timing=QUICK.timing)
    with pytest.raises(UserError, match="precision: table int8 vs now fp32"):  # no fp32 rows into an INT8 table
        collect_table(fp32, "dev_int8", SHAPE, tmp_path, progress=False, ops=ops)
    assert json.loads((tmp_path / "dev_int8.json").read_text())["method"].startswith("INT8")


def test_old_tables_read_as_fp32_and_keep_their_fingerprint(tmp_path):
    csv = write_table(tmp_path, "old", {"head_64x5x13_c10": 0.01})
    table = load_table(csv)
    assert table.precision == "fp32"
    meta = json.loads(csv.with_suffix(".json").read_text())
    csv.with_suffix(".json").write_text(json.dumps(meta | {"precision": "fp32"}))
    assert load_table(csv).fingerprint() == table.fingerprint()
    csv.with_suffix(".json").write_text(json.dumps(meta | {"precision": "int8"}))
    assert load_table(csv).fingerprint() != table.fingerprint()
    csv.with_suffix(".json").write_text(json.dumps(meta | {"precision": "int4"}))
    with pytest.raises(UserError, match="'precision' must be one of fp32, int8"):
        load_table(csv)


def test_search_and_validation_refuse_a_table_of_another_precision(tmp_path, capsys):
    write_table(tmp_path / "tables", "dev", {"head_64x5x13_c10": 0.01})
    common = ["--tables-dir", str(tmp_path / "tables"), "--device-name", "dev", "--precision", "int8", "--no-progress"]
    assert main(["--mode", "validate-latency", "--out", str(tmp_path / "v"), "--n", "2", *common]) == 2
    assert "latency table 'dev' times fp32 models, not int8" in capsys.readouterr().err
    assert main(["--mode", "nas", "--out", str(tmp_path / "n"), *common]) == 2
    assert "times fp32 models, not int8" in capsys.readouterr().err


def test_a_search_on_the_shipped_int8_table_runs_with_defaults_and_names_its_precision(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--mode", "nas", "--out", str(out), "--devices", "xeon-avx512-2c_ort_int8_t1", "--nas-population", "4",
            "--nas-generations", "0", "--proxy-epochs", "1", "--backend", "inline", "--jobs", "1", "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "latency_ms_xeon_avx512_2c_ort_int8_t1: int8 models, predicted by the table" in printed
    column = "latency_ms_xeon_avx512_2c_ort_int8_t1"
    assert column in (out / "nas" / "pareto.csv").read_text().splitlines()[0]
    legend = json.loads((out / "nas" / "columns.json").read_text())["pareto.csv"][column]
    assert "int8" in legend.lower()
