"""Latency tables: prediction by lookup equals the hand sum; interpolation is flagged; bad tables are refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
from latency_fixtures import latencies_for, write_table

from common.errors import UserError
from latency_tables.interpolate import estimate_from_family
from latency_tables.keys import parse_op_key, spec_ops
from latency_tables.locations import TABLES_ENV
from latency_tables.registry import list_devices, load_device, table_path
from latency_tables.table import INTERPOLATED, load_table
from search_spaces import create_search_space

SPACE = create_search_space("mel2d")
SPEC = SPACE.parse("c16k3s2-ir32k3s1e4se-ds32k3s1r2-c48k5s2-h64d20")
SHAPE = (1, 40, 101)


def _ops():
    return spec_ops(SPACE, SPEC, 10, SHAPE)


def test_prediction_is_the_hand_computed_sum(tmp_path):
    ops = _ops()
    lat = latencies_for(ops)
    table = load_table(write_table(tmp_path, "dev", lat))
    expected = sum(lat[op.key] for op in ops)  # an op used twice counts twice
    pred = table.predict(SPEC)
    assert pred.summed_ms == pytest.approx(expected) and pred.latency_ms == pytest.approx(expected)
    assert pred.interpolated_ms == 0 and pred.missing == () and pred.n_ops == len(ops)


def test_calibration_is_applied(tmp_path):
    ops = _ops()
    lat = latencies_for(ops)
    cal = {"scale": 1.1, "offset_ms": 0.02, "n_models": 10}
    table = load_table(write_table(tmp_path, "dev", lat, calibration=cal))
    summed = sum(lat[op.key] for op in ops)
    assert table.predict(SPEC).latency_ms == pytest.approx(1.1 * summed + 0.02)


def test_missing_op_is_interpolated_and_flagged(tmp_path):
    ops = _ops()
    lat = latencies_for(ops)
    target = next(op for op in ops if op.kind == "pw")
    del lat[target.key]
    for c in (8, 16, 24, 48, 96, 128):  # family members around it
        lat[dataclasses.replace(target, out_channels=c).key] = 0.001 * c
    table = load_table(write_table(tmp_path, "dev", lat))
    pred = table.predict(SPEC)
    assert pred.missing == (target.key,)
    assert 0 < pred.interpolated_share < 1 and pred.interpolated_ms > 0
    with pytest.raises(UserError, match=rf"lacks 1 op\(s\), e.g. {target.key}.*--mode latency-table --device-name dev"):
        table.predict(SPEC, strict=True)


def test_family_interpolation_recovers_a_bilinear_law():
    law = lambda cin, cout: 0.002 + 1e-5 * cin + 2e-5 * cout + 3e-6 * cin * cout  # noqa: E731
    members = [((cin, cout), law(cin, cout)) for cin in (8, 16, 32, 64, 128) for cout in (8, 16, 32, 64, 128)]
    for target in ((24, 48), (96, 12), (256, 256)):
        assert estimate_from_family(target, members) == pytest.approx(law(*target), rel=0.02)


def test_op_whose_family_is_unmeasured_falls_back_to_its_kind(tmp_path):
    ops = _ops()
    lat = latencies_for(ops)
    target = next(op for op in ops if op.kind == "dw")
    lat = {k: v for k, v in lat.items() if parse_op_key(k).family != target.family}
    lat[dataclasses.replace(target, in_shape=(target.in_shape[0], 10, 26)).key] = 0.5
    table = load_table(write_table(tmp_path, "dev", lat))
    ms, source = table.resolve(target)
    interpolated = source == INTERPOLATED
    assert interpolated and ms > 0


def test_op_with_no_similar_measurement_is_an_error(tmp_path):
    ops = _ops()
    lat = {k: v for k, v in latencies_for(ops).items() if not k.startswith("se_")}
    table = load_table(write_table(tmp_path, "dev", lat))
    with pytest.raises(UserError, match=r"lacks 1 op\(s\), e.g. se_"):
        table.predict(SPEC)


def test_other_space_or_input_shape_is_refused(tmp_path):
    table = load_table(write_table(tmp_path, "dev", latencies_for(_ops())))
    with pytest.raises(UserError, match=r"collected for space 'mel2d' with input shape \(1, 40, 101\).*\(1, 64, 101\)"):
        table.check_compatible("mel2d", (1, 64, 101))
    wave = create_search_space("wave1d").sample(__import__("random").Random(0))
    with pytest.raises(UserError, match="search space 'mel2d', not 'wave1d'"):
        table.predict(wave)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda csv, meta: csv.write_text("key,latency\nx,1\n"), r"lacks column\(s\) kind"),
        (
            lambda csv, meta: csv.write_text(csv.read_text().replace(",0.01,0.01,", ",-0.01,-0.01,", 1)),
            r"latency_ms must be a positive number of milliseconds, got '-0.01'",
        ),
        (lambda csv, meta: csv.write_text(csv.read_text().replace(",0.01,0.01,", ",0,0,", 1)), "must be a positive"),
        (lambda csv, meta: meta.write_text(meta.read_text().replace('"ms"', '"us"')), "units must be 'ms'"),
        (
            lambda csv, meta: meta.write_text(meta.read_text().replace('"format_version": 1', '"format_version": 99')),
            "format version 99",
        ),
        (lambda csv, meta: meta.unlink(), r"needs both dev.csv and dev.json"),
        (lambda csv, meta: csv.write_text(csv.read_text() + "conv_1x2_3,conv,0.1,0.1,0,,3,1\n"), "not a valid op key"),
    ],
    ids=["columns", "negative", "zero", "units", "version", "no-metadata", "bad-key"],
)
def test_bad_table_files(tmp_path, mutate, message):
    csv = write_table(tmp_path, "dev", latencies_for(_ops()))
    mutate(csv, csv.with_suffix(".json"))
    with pytest.raises(UserError, match=message):
        load_table(csv)


def test_runtime_version_mismatch_warns(tmp_path):
    csv = write_table(tmp_path, "dev", latencies_for(_ops()), device={"onnxruntime": "0.1.0"})
    with pytest.warns(UserWarning, match="measured with onnxruntime 0.1.0"):
        load_table(csv)


def test_registry_finds_tables_in_user_folders(tmp_path, monkeypatch):
    write_table(tmp_path / "mine", "my-pi4", latencies_for(_ops()))
    monkeypatch.setenv(TABLES_ENV, str(tmp_path / "mine"))
    assert "my-pi4" in list_devices()
    assert load_device("my-pi4").predict(SPEC).latency_ms > 0
    with pytest.raises(UserError, match=r"unknown device 'nope'; known devices: .*my-pi4"):
        table_path("nope")


def test_metadata_records_units_and_space(tmp_path):
    csv = write_table(tmp_path, "dev", latencies_for(_ops()))
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["units"] == "ms" and load_table(csv).space == "mel2d"


def test_padded_interpolation_follows_the_runtime_block():
    # latency steps with channels padded to 16, as a blocked runtime computes them
    law = lambda cin, cout: 1e-5 * (-(-cin // 16) * 16) * (-(-cout // 16) * 16)  # noqa: E731
    members = [((cin, cout), law(cin, cout)) for cin in (8, 16, 24, 48, 64) for cout in (8, 16, 24, 48, 64)]
    assert estimate_from_family((12, 40), members, block=16) == pytest.approx(law(12, 40), rel=0.02)


def test_channel_block_is_probed_and_recorded():
    from latency_tables.layout import channel_block_size

    block = channel_block_size()
    assert block in (1, 4, 8, 16, 32)
    shipped = load_device("epyc-avx512-2c_ort_fp32_t1")
    assert shipped.channel_block == 16  # the CI machine class has AVX-512


def _rewrite_meta(csv, **changes):
    meta_path = csv.with_suffix(".json")
    meta_path.write_text(json.dumps(json.loads(meta_path.read_text()) | changes))


def test_fingerprint_ignores_bookkeeping_formatting_and_reference_rows(tmp_path):
    lat = latencies_for(_ops())
    csv = write_table(tmp_path, "dev", lat, calibration={"scale": 1.1, "offset_ms": 0.02, "n_models": 10})
    before = load_table(csv).fingerprint()
    assert len(before) == 64 and int(before, 16) >= 0
    _rewrite_meta(
        csv,
        created="2030-01-01T00:00:00+00:00",
        collection={"measured": 3, "updated": "2030-01-02T00:00:00+00:00", "last_run_wall_s": 9.9},
        device={"cpu_model": "another", "onnxruntime": "1.31.1"},
        timing={"warmup": 3},
        calibration={"scale": 1.1, "offset_ms": 0.02, "n_models": 12, "fitted_on_ops": 7, "fitted": "2030"},
    )
    header, *rows = csv.read_text().splitlines()
    rows = [row.replace(",0.01,", ",0.0100,", 1) for row in reversed(rows)]  # other order, other formatting
    csv.write_text("\n".join([header, *rows, "ref_p_16x20x51,reference,0.005,0.005,0.0,,3,0.0"]) + "\n")
    assert load_table(csv).fingerprint() == before


@pytest.mark.parametrize(
    "change",
    [
        {"calibration": {"scale": 1.2, "offset_ms": 0.02}},
        {"calibration": {"scale": 1.1, "offset_ms": 0.03}},
        {"calibration": None},
        {"channel_block": 16},
        {"n_classes": 12},
        {"input_shape": [1, 64, 101]},
        {"op": 0.0101},
    ],
    ids=["scale", "offset", "no-calibration", "channel-block", "classes", "input-shape", "op-latency"],
)
def test_fingerprint_changes_with_what_changes_predictions(tmp_path, change):
    lat = latencies_for(_ops())
    csv = write_table(tmp_path, "dev", lat, calibration={"scale": 1.1, "offset_ms": 0.02, "n_models": 10})
    before = load_table(csv).fingerprint()
    if "op" in change:
        first = next(iter(lat))
        write_table(tmp_path, "dev", lat | {first: change["op"]}, calibration={"scale": 1.1, "offset_ms": 0.02})
    else:
        _rewrite_meta(csv, **change)
    assert load_table(csv).fingerprint() != before


def test_fingerprint_reads_absent_settings_as_predictions_do(tmp_path):
    lat = latencies_for(_ops())
    bare = load_table(write_table(tmp_path / "a", "dev", lat)).fingerprint()
    explicit = write_table(tmp_path / "b", "dev", lat, calibration={"scale": 1, "offset_ms": 0}, channel_block=1)
    assert load_table(explicit).fingerprint() == bare  # identity calibration, no blocking


HEAD_MAC_MS = 2e-6  # hand-made law of the head tables below: ms per Gemm multiply-accumulate


def _head_ms(op) -> float:
    """0.002 ms fixed + 1e-7 ms per pooled element + HEAD_MAC_MS per Gemm MAC: linear in everything."""
    c, h, w = op.in_shape
    gemm = c * op.hidden + op.hidden * op.out_channels if op.hidden else c * op.out_channels
    return 0.002 + 1e-7 * c * h * w + HEAD_MAC_MS * gemm


def test_head_for_another_class_count_is_class_adjusted_not_interpolated(tmp_path):
    ops = _ops()  # 10 classes; the spec's head has 64 hidden units
    head = next(op for op in ops if op.kind == "head")
    lat = latencies_for(ops)
    for hidden in (32, 64, 128):  # the same input at other hidden widths: the table's cost per head MAC
        variant = dataclasses.replace(head, hidden=hidden)
        lat[variant.key] = _head_ms(variant)
    table = load_table(write_table(tmp_path, "dev", lat, channel_block=16))
    assert table.head_mac_ms == pytest.approx(HEAD_MAC_MS)
    body = sum(lat[op.key] for op in ops if op.kind != "head")
    for n_classes in (6, 7, 35, 50):
        wanted = dataclasses.replace(head, out_channels=n_classes)
        pred = table.predict(SPEC, strict=True, n_classes=n_classes)  # strict accepts it
        assert pred.class_adjusted == (wanted.key,) and pred.missing == () and pred.interpolated_ms == 0
        assert pred.class_adjusted_ms == pytest.approx(_head_ms(wanted))  # exact: not padded to 16 classes
        assert pred.summed_ms == pytest.approx(body + _head_ms(wanted))
        assert 0 < pred.class_adjusted_share < 1 and pred.interpolated_share == 0
        assert table.resolve(wanted) == (pytest.approx(_head_ms(wanted)), "class_adjusted")
    assert table.predict(SPEC).class_adjusted == ()  # the table's own class count: measured


def test_class_adjustment_without_a_measured_mac_cost_uses_the_heads_own_cost():
    from latency_tables.interpolate import adjust_head_classes

    head = parse_op_key("head_64x5x13_c10")
    per_unit = 0.01 / (64 * 5 * 13 + 64 * 10)  # the head's time over its pooled elements and MACs
    assert adjust_head_classes(head, 0.01, 35, None) == pytest.approx(0.01 + 25 * 64 * per_unit)
    assert adjust_head_classes(head, 0.01, 6, 1e-6) == pytest.approx(0.01 - 4 * 64 * 1e-6)


def test_unmeasured_head_is_interpolated_at_a_measured_class_count_then_adjusted(tmp_path):
    lat = {}
    for cin, hidden in [(16, 64), (32, 64), (64, 64), (96, 64), (128, 64), (16, 128), (64, 128), (128, 128)]:
        op = parse_op_key(f"head_{cin}x5x13_c10_h{hidden}")
        lat[op.key] = _head_ms(op)
    table = load_table(write_table(tmp_path, "dev", lat, channel_block=16))
    target = parse_op_key("head_48x5x13_c50_h64")  # no head on a 48-channel input at all
    ms, source = table.resolve(target)
    assert source == "interpolated" and ms == pytest.approx(_head_ms(target), rel=1e-6)
    pred = table.predict_ops([target])
    assert pred.missing == (target.key,) and pred.class_adjusted == ()
    with pytest.raises(UserError, match=r"lacks 1 op\(s\), e.g. head_48x5x13_c50_h64"):
        table.predict_ops([target], strict=True)


def test_family_interpolation_pads_only_blocked_channels():
    head = parse_op_key("head_64x5x13_c30_h64")
    assert head.blocked_fields == (True, False, False)
    assert parse_op_key("pw_24x10x26_40_relu").blocked_fields == (True, True)
    # a head law linear in its (unpadded) class count, measured at 10, 20 and 40 classes
    law = lambda cin, n, h: 0.001 + 1e-5 * (-(-cin // 16) * 16) + 1e-6 * n * h  # noqa: E731
    members = [((cin, n, 64), law(cin, n, 64)) for cin in (16, 32, 64, 128) for n in (10, 20, 40)]
    estimate = estimate_from_family(head.channel_fields, members, block=16, blocked=head.blocked_fields)
    assert estimate == pytest.approx(law(64, 30, 64), rel=1e-6)  # 30 classes, not 32


def test_cached_table_reloads_when_only_the_metadata_changes(tmp_path):
    import os

    from latency_tables.registry import cached_table

    csv = write_table(tmp_path, "dev", latencies_for(_ops()))
    first = cached_table(csv)
    assert cached_table(csv) is first
    meta = csv.with_suffix(".json")
    _rewrite_meta(csv, calibration={"scale": 1.5, "offset_ms": 0.0})  # a recalibration rewrites only the JSON
    stat = meta.stat()
    os.utime(meta, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # coarse clocks: a distinct mtime
    assert cached_table(csv).calibration.scale == 1.5
