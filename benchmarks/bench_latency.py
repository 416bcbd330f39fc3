"""Latency-table figures: prediction vs end-to-end measurement on random specs, noise floor, costs.

Usage: python benchmarks/bench_latency.py [--device NAME] [--n 100] [--loo 400]
(an INT8 table in another folder: EDGE_AUDIO_NAS_TABLES=DIR python benchmarks/bench_latency.py --device NAME)

Prints, for ``--n`` random specs of the table's space measured on this machine (ORT, the table's
thread count): share within +-10 % and +-5 %, MAPE, Kendall tau of the calibrated and the raw
summed prediction, the noise floor (two independent measurement passes against each other), the
prediction and measurement cost per spec, and the time the table took to collect (from its
metadata). ``--loo`` ops are also left out of the table one at a time and interpolated from their
family, and the same specs are predicted from tables with only 50/25/10 % of their ops (a
collection cut short by its time budget), to show what interpolation costs in accuracy.

For an INT8 table the same specs are also measured as fp32 models, to show how INT8 changes the
ranking a search optimises (Kendall tau between fp32 and INT8 latency, INT8 speed-up spread).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from latency_tables.interpolate import estimate_from_family
from latency_tables.keys import parse_op_key
from latency_tables.ort_timing import TimingConfig
from latency_tables.registry import load_device
from latency_tables.validate import validate_table
from pipeline.latency_stage import DEFAULT_DEVICE


def leave_one_out(table, n: int, seed: int) -> None:
    keys = random.Random(seed).sample(sorted(table.latency_ms), min(n, len(table.latency_ms)))
    families = table.families()
    errors, skipped = [], 0
    for key in keys:
        op = parse_op_key(key)
        members = [m for m in families[op.family] if m[0] != op.channel_fields]
        if not members:
            skipped += 1
            continue
        errors.append(estimate_from_family(op.channel_fields, members) / table.latency_ms[key] - 1)
    err = np.abs(np.array(errors))
    print(
        f"leave-one-out interpolation over {len(errors)} measured ops ({skipped} alone in their family): "
        f"median error {100 * np.median(err):.1f}%, within +-10% {100 * np.mean(err <= 0.1):.1f}%, "
        f"within +-25% {100 * np.mean(err <= 0.25):.1f}%"
    )


def partial_tables(table, frame, seed: int) -> None:
    from latency_tables.table import LatencyTable
    from search_spaces import create_search_space

    space = create_search_space(table.space)
    specs = [space.parse(s) for s in frame["spec"]]
    measured = frame["measured_ms"].to_numpy()
    keys = sorted(table.latency_ms)
    random.Random(seed).shuffle(keys)
    for share in (0.5, 0.25, 0.1):
        keep = set(keys[: int(share * len(keys))])
        part = LatencyTable(
            table.name, table.meta, {k: v for k, v in table.latency_ms.items() if k in keep}, table.path
        )
        predicted = np.array([part.predict(s).latency_ms for s in specs])
        err = np.abs(predicted / measured - 1)
        print(
            f"  table with {share:.0%} of its ops measured: within +-10% {100 * np.mean(err <= 0.1):.1f}%, "
            f"within +-5% {100 * np.mean(err <= 0.05):.1f}%, MAPE {100 * np.mean(err):.2f}%"
        )


def fp32_vs_int8(table, frame, seed: int) -> None:
    """The specs of an INT8 validation measured as fp32 models too: how the two rankings differ."""
    from scipy.stats import kendalltau

    from latency_tables.layout import export_onnx
    from latency_tables.ort_timing import time_model
    from search_spaces import create_search_space

    space, shape = create_search_space(table.space), table.input_shape
    timing = TimingConfig(threads=table.meta["threads"]).end_to_end()
    fp32 = np.array([
        time_model(export_onnx(space.build(space.parse(s), table.n_classes, shape), shape), timing).latency_ms
        for s in frame["spec"]
    ])  # fmt: skip
    int8 = frame["measured_ms"].to_numpy()
    speedup = fp32 / int8
    top = max(1, len(fp32) // 10)
    shared = len(set(np.argsort(fp32)[:top]) & set(np.argsort(int8)[:top]))
    print(
        f"fp32 vs INT8 on the same {len(fp32)} specs: Kendall tau {kendalltau(fp32, int8).statistic:.3f}; INT8 "
        f"speed-up median x{np.median(speedup):.2f} (x{speedup.min():.2f} .. x{speedup.max():.2f}; "
        f"{100 * np.mean(speedup < 1):.0f}% of specs slower in INT8); the fastest {top} by fp32 and by INT8 share "
        f"{shared}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=DEFAULT_DEVICE)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--loo", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = load_device(args.device)
    meta = table.meta
    coll = meta.get("collection", {})
    print(
        f"table {table.name}: {len(table.latency_ms)} ops measured of {coll.get('n_ops')} the space emits, "
        f"collected in {coll.get('total_wall_s')} s; {meta['device']['cpu_model']}, "
        f"onnxruntime {meta['device']['onnxruntime']}, {meta['threads']} thread(s), {table.precision}"
    )
    cal = meta.get("calibration") or {}
    print(
        f"calibration: measured = {cal.get('scale', 1):.4f} x summed {cal.get('offset_ms', 0):+.4f} ms "
        f"({cal.get('n_models', 0)} models)"
    )
    timing = TimingConfig(threads=meta["threads"])
    start = time.perf_counter()
    report = validate_table(table, args.n, args.seed, timing, progress=False)
    print(f"validation of {args.n} random {table.space} specs ({time.perf_counter() - start:.0f} s):")
    print(f"  calibrated prediction: {report.prediction.line()}")
    if report.above_0_1ms:
        print(f"  specs >= 0.1 ms:       {report.above_0_1ms.line()}")
    print(f"  summed (uncalibrated): {report.prediction_uncalibrated.line()}")
    print(f"  noise floor (A vs B):  {report.noise_floor.line()}")
    measured = report.frame["measured_ms"]
    print(f"  measured latencies: {measured.min():.3f} .. {measured.max():.2f} ms, median {measured.median():.3f} ms")
    print(
        f"  cost per spec: prediction {report.predict_ms_per_spec:.2f} ms, end-to-end measurement "
        f"{report.measure_ms_per_spec:.1f} ms ({report.measure_ms_per_spec / report.predict_ms_per_spec:.0f}x)"
    )
    worst = report.frame.reindex(report.frame["error_pct"].abs().sort_values(ascending=False).index).head(5)
    print("  largest errors:")
    for row in worst.itertuples():
        print(
            f"    {row.error_pct:+6.1f}%  measured {row.measured_ms:.3f} ms  "
            f"predicted {row.predicted_ms:.3f} ms  {row.spec}"
        )
    if table.precision == "int8":
        fp32_vs_int8(table, report.frame, args.seed)
    leave_one_out(table, args.loo, args.seed)
    partial_tables(table, report.frame, args.seed)


if __name__ == "__main__":
    main()
