"""Deployable models on FSDD: INT8 size/latency/accuracy per variant, distilled vs plain, proxy fidelity.

Usage: python benchmarks/bench_quantize.py [--fsdd PATH] [--out runs/bench-quantize] [--epochs 10] [--seeds 3]
                                           [--population 8] [--generations 2] [--survivors 5]

One run folder, three commands of the real CLI (each resumable, so a second call reuses what exists):
``--mode baseline`` (tiny/small/medium/dscnn, --epochs x --seeds), a short ``--mode nas`` (proxy 3
epochs on half the train split), then ``--mode quantization`` (survivors trained --seeds times,
distilled from the best model, every model exported and quantized). It prints, side by side from
that one run, per model and variant: size ratio and ORT latency ratio against the model's own fp32
ONNX (1 thread), the test accuracy change, and the layers kept fp32; distilled minus plain test
accuracy (paired over seeds, mean +- std); and Kendall tau of proxy vs full accuracy.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from complete_pipeline import main as cli

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _run(argv: list[str]) -> None:
    code = cli([*argv, "--no-progress"])
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(argv)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quantize"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--survivors", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    out, data = str(args.out), ["--dataset", "fsdd", "--dataset-path", str(args.fsdd), "--jobs", str(args.jobs)]
    resume = ["--resume"] if (args.out / "config.json").exists() else []
    _run(["--mode", "baseline", "--out", out, "--epochs", str(args.epochs), "--seeds", str(args.seeds), *data, *resume])
    search = ["--nas-population", str(args.population), "--nas-generations", str(args.generations),
              "--proxy-epochs", "3", "--max-latency-ms", "2"]  # fmt: skip
    has_search = (args.out / "nas" / "search.json").exists()
    _run(["--mode", "nas", "--out", out, *search, *data, *(["--resume"] if has_search else [])])
    _run(["--mode", "quantization", "--out", out, "--epochs", str(args.epochs), "--seeds", str(args.seeds),
          "--survivors", str(args.survivors), "--jobs", str(args.jobs), "--resume"])  # fmt: skip
    report(args.out)


def report(run_dir: Path) -> None:
    """Print the figures of a quantized run folder."""
    results = json.loads((run_dir / "quantization_results.json").read_text())
    machine = results["machine"]
    print(
        f"\nmachine: {machine['cpu_model']} ({', '.join(machine['cpu_flags'])}), {machine['cpu_count']} cores, "
        f"onnxruntime {machine['onnxruntime']}; latency 1 thread, min over sessions of the session median"
    )
    header = ("model", "variant", "fp32 ms", "size x", "speed x", "acc pts", "fp32 layers")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (16, 15, 8, 7, 8, 8, 11), strict=True)))
    fp32 = {}
    for r in _rows(run_dir / "quantization_results.csv"):
        if r["variant"] == "fp32":
            fp32[r["model"]] = r
            print(f"{r['model']:>16} {'fp32':>15} {float(r['latency_ms']):>8.3f} {'':>7} {'':>8} "
                  f"{100 * float(r['test_accuracy']):>7.2f}%")  # fmt: skip
            continue
        print(f"{r['model']:>16} {r['variant']:>15} {'':>8} {float(r['size_ratio']):>7.2f} {float(r['speedup']):>8.2f} "
              f"{float(r['accuracy_delta_pts']):>+8.2f} {r['layers_fp32'] or '-':>11}")  # fmt: skip
    print("\ndistillation (test accuracy, distilled minus plain, paired over seeds):")
    for r in _rows(run_dir / "training_results.csv"):
        if r["kind"] == "distilled" and r["delta_test_accuracy_pts"]:
            print(f"  {r['plain_model']:>14}: {float(r['delta_test_accuracy_pts']):+.2f} +- "
                  f"{float(r['delta_test_accuracy_pts_std']):.2f} pts over {r['paired_seeds']} seeds "
                  f"(teacher {r['teacher']})")  # fmt: skip
    fid = results["proxy_fidelity"]
    for split in ("val", "test"):
        tau = fid[split]["tau"]
        shown = "undefined" if tau is None else f"{tau:.3f} (p = {fid[split]['p_value']:.3f})"
        print(f"proxy vs full {split} accuracy over {fid['n']} survivors: Kendall tau {shown}")


if __name__ == "__main__":
    main()
