"""Bad input, every mode: one clear ``error:`` line, exit code 2, no traceback, and the user's files untouched.

The harness (:data:`CASES`) feeds each mode generated bad files (wrong encodings, truncations,
wrong types, NaN/inf, absurd headers, huge and tiny values, unwritable folders) through the CLI
in-process and checks, for every case: exit code 2; stderr is exactly one ``error: ...`` line that
says what was expected; nothing on stdout (every case fails before any work); no file the user
had changed (every input is hashed before and after); and the run folder is as it was (a fresh
``--out`` does not exist afterwards, an existing one is hashed with the inputs). Hypothesis fuzzes
the layers where random input finds edge cases cheaply: the text reader, config files, scheduler
addresses, audio headers and dataset paths. Then one regression test per row of issue 16.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from audio_trees import make_folders, write_wav
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from latency_fixtures import write_table

from common.errors import UserError
from complete_pipeline import main

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HASHED_BYTES = 4 << 20  # larger files are compared by size and mtime (the oversized config)
TABLE_OPS = {  # a hand-made table of three ops: loads in milliseconds
    "stem_1x40x101_8_k5x5_s2_relu": 0.05,
    "dw_12x21x51_k5x5_s1_relu": 0.02,
    "head_64x20x51_c10": 0.01,
}
US8K_HEADER = "slice_file_name,fsID,start,end,salience,fold,classID,class"
LATIN1_ROW = "caf\xe9.wav,1,0,1,1,1,0,dog".encode("latin-1")
LATIN1_JSON = '{"space": "caf\xe9"}'.encode("latin-1")
SPLIT_MANIFEST = b"file_path,label,split\nclips/0.wav,low,train\nclips/1.wav,high,holdout\n"


# -- the user's files ---------------------------------------------------------------------------


class World:
    """Every file a user hands the tool in the cases below, built once under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ds = make_folders(root / "ds", per_class=2)
        self.text = self.write("notes.txt", "not a folder")
        self.run = self._run_folder(root / "run")
        self.not_run = (root / "empty-folder").resolve()
        self.not_run.mkdir()
        self.search = self._run_folder(root / "searched")
        (self.search / "nas").mkdir()
        (self.search / "nas" / "search.json").write_text("{}")
        self.model = self.write("model.onnx", b"not an onnx file")
        self.card_model = self._model_with_card(root / "predict" / "good.onnx", _card())
        self.bad_audio = self._bad_audio(root / "clips")

    def write(self, rel: str, data: str | bytes) -> Path:
        """A user file (folders created)."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        return path

    def config(self, name: str, data: str | bytes) -> str:
        """A config file, by name (the extension picks the parser)."""
        return str(self.write(f"configs/{name}", data))

    def us8k(self, name: str, meta: bytes | None = None, rows: list[str] | None = None) -> str:
        """A tiny UrbanSound8K tree (two clips in fold 1) whose metadata is ``meta`` or the header plus ``rows``."""
        root = self.root / "us8k" / name
        for k in range(2):
            write_wav(root / "audio" / "fold1" / f"{k}.wav", 300 + 200 * k, seconds=0.1)
        good = [f"{k}.wav,{k},0,1,1,1,{k},{cls}" for k, cls in enumerate(("dog", "car"))]
        text = meta if meta is not None else "\n".join([US8K_HEADER, *good, *(rows or [])]).encode() + b"\n"
        self.write(f"us8k/{name}/metadata/UrbanSound8K.csv", text)
        return str(root)

    def esc50(self, name: str, extra_row: str) -> str:
        """A tiny ESC-50 tree with one more metadata row."""
        root = self.root / "esc50" / name
        rows = ["filename,fold,target,category,esc10,src_file,take"]
        for k, cls in enumerate(("dog", "rain")):
            write_wav(root / "audio" / f"1-{k}-A-{k}.wav", 500 + 100 * k, seconds=0.1)
            rows.append(f"1-{k}-A-{k}.wav,1,{k},{cls},True,{k},A")
        self.write(f"esc50/{name}/meta/esc50.csv", "\n".join([*rows, extra_row]) + "\n")
        return str(root)

    def manifest(self, name: str, rows: list[str] | None = None, data: bytes | None = None) -> str:
        """A CSV manifest with two good clips plus ``rows`` (or raw bytes)."""
        root = self.root / "manifest" / name
        good = []
        for k, cls in enumerate(("low", "high")):
            write_wav(root / "clips" / f"{k}.wav", 300 + 300 * k, seconds=0.1)
            good.append(f"clips/{k}.wav,{cls}")
        text = data if data is not None else "\n".join(["file_path,label", *good, *(rows or [])]).encode() + b"\n"
        self.write(f"manifest/{name}/metadata.csv", text)
        return str(root / "metadata.csv")

    def speech(self, name: str, testing_list: bytes) -> str:
        """A tiny Speech Commands tree whose ``testing_list.txt`` is ``testing_list``."""
        root = self.root / "speech" / name
        for k, word in enumerate(("yes", "no")):
            write_wav(root / word / f"a{k}_nohash_0.wav", 300 + 200 * k, seconds=0.1)
        self.write(f"speech/{name}/validation_list.txt", "yes/a0_nohash_0.wav\n")
        self.write(f"speech/{name}/testing_list.txt", testing_list)
        return str(root)

    def tables(self, name: str, meta: dict | None = None, meta_bytes: bytes | None = None,
               csv_bytes: bytes | None = None, **table_kwargs) -> str:  # fmt: skip
        """A tables folder holding device ``dev``: a valid small table with its files replaced as given."""
        folder = self.root / "tables" / name
        csv = write_table(folder, "dev", TABLE_OPS, **table_kwargs)
        if meta is not None:
            current = json.loads(csv.with_suffix(".json").read_text())
            csv.with_suffix(".json").write_text(json.dumps(current | meta))
        if meta_bytes is not None:
            csv.with_suffix(".json").write_bytes(meta_bytes)
        if csv_bytes is not None:
            csv.write_bytes(csv_bytes)
        return str(folder)

    def card(self, name: str, data: bytes) -> str:
        """An (unusable) ONNX file whose model card holds ``data``."""
        model = self.write(f"predict/{name}.onnx", b"onnx")
        self.write(f"predict/{name}.json", data)
        return str(model)

    def _run_folder(self, path: Path) -> Path:
        (path / "data").mkdir(parents=True)
        (path / "data" / "summary.json").write_text("{}")
        (path / "config.json").write_text(json.dumps({"data": {"dataset": "synthetic"}}))
        (path / "stages.jsonl").write_text('{"mode": "features", "event": "start"}\n')
        return path

    def _model_with_card(self, path: Path, card: dict) -> Path:
        self.write(str(path.relative_to(self.root)), b"onnx")
        self.write(str(path.with_suffix(".json").relative_to(self.root)), json.dumps(card))
        return path

    def _bad_audio(self, folder: Path) -> Path:
        write_wav(folder / "absurd_rate.wav", 440, seconds=0.5)
        with_rate(folder / "absurd_rate.wav", 1)
        good = write_wav(folder / "cut.wav", 440, seconds=0.5)
        good.write_bytes(good.read_bytes()[:100])
        return folder


def with_rate(path: Path, rate: int) -> Path:
    """Rewrite a PCM WAV header's sample rate (and byte rate) in place."""
    data = bytearray(path.read_bytes())
    block_align = struct.unpack_from("<H", data, 32)[0]
    struct.pack_into("<II", data, 24, rate, rate * block_align)
    path.write_bytes(bytes(data))
    return path


def _card() -> dict:
    """A valid model card (default features, 40 bands, two classes)."""
    from train.features import FeatureConfig

    cfg = FeatureConfig()
    return {
        "model_name": "m", "spec": "c8k3s1-h0d0", "variant": "fp32", "classes": ["a", "b"],
        "sample_rate": cfg.sample_rate, "clip_seconds": cfg.clip_seconds, "n_samples": cfg.n_samples,
        "feature_kind": cfg.kind, "features": dataclasses.asdict(cfg), "norm_mean": [0.0] * cfg.n_bins,
        "norm_std": [1.0] * cfg.n_bins, "input_name": "x", "input_shape": [1, *cfg.shape], "output_name": "y",
        "opset": 17, "onnxruntime_version": "1",
    }  # fmt: skip


def fingerprint(root: Path) -> dict[str, tuple]:
    """Every file and folder below ``root``: content hash (size and mtime for large files)."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = ("dir",)
            continue
        info = path.stat()
        if info.st_size > HASHED_BYTES:
            out[rel] = (info.st_size, info.st_mtime_ns)
        else:
            out[rel] = (info.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("user"))


# -- the cases ----------------------------------------------------------------------------------

Argv = Callable[[World], list[str]]


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: the command line (given the user's files) and what the error line must say.

    Attributes:
        id: Test id (``mode-what``).
        argv: The arguments; without ``--out``, a fresh folder is given that must not exist afterwards.
        expect: Regular expression the error line must match (what was expected, and where).
        marks: pytest marks (e.g. a skip where the case cannot be set up).
    """

    id: str
    argv: Argv
    expect: str
    marks: tuple = ()


def _cases() -> list[Case]:
    cases = [*_config_cases(), *_flag_cases(), *_folder_cases(), *_dataset_cases(), *_table_cases()]
    return [*cases, *_predict_cases(), *_run_folder_cases()]


def _features(w: World, *rest: str) -> list[str]:
    return ["--mode", "features", "--dataset-path", str(w.ds), *rest]


def _config_cases() -> list[Case]:
    def with_config(name: str, data: str | bytes, mode: str = "features") -> Argv:
        return lambda w: ["--mode", mode, "--dataset-path", str(w.ds), "--config", w.config(name, data)]

    utf8 = r"is not UTF-8 text .*expected UTF-8"
    return [
        Case("config-latin1", with_config("latin1.yaml", "data:\n  split: caf\xe9\n".encode("latin-1")), utf8),
        Case("config-binary", with_config("binary.yaml", bytes(range(256)) * 4), utf8),
        Case("config-nul-bytes", with_config("nul.yaml", b"data:\n  seed: 1\x00\x00\n"), r"binary file, not UTF-8"),
        Case("config-utf16", with_config("utf16.json", '{"run": {"seed": 1}}'.encode("utf-16")), r"UTF-16.*UTF-8"),
        Case("config-truncated-json", with_config("cut.json", '{"run": {"seed": 1'), r"cut\.json does not parse"),
        Case("config-truncated-yaml", with_config("cut.yaml", "data:\n  split: [spea"), r"cut\.yaml does not parse"),
        Case("config-bad-toml", with_config("bad.toml", "[data\nsplit = 1"), r"bad\.toml does not parse"),
        Case("config-python-tag", with_config("tag.yaml", "data: !!python/object/apply:os.system [ls]\n"),
             r"does not parse: could not determine a constructor"),
        Case("config-bad-date", with_config("date.yaml", "run:\n  seed: 2024-13-45\n"), r"date\.yaml does not parse"),
        Case("config-top-level-list", with_config("list.yaml", "- data\n- run\n"), r"must hold a mapping of sections"),
        Case("config-section-scalar", with_config("scalar.yaml", "data: hello\n"),
             r"config field 'data' is a section: it expects a mapping of fields"),
        Case("config-unknown-key", with_config("key.yaml", "features:\n  mels: 64\n"), r"unknown config key"),
        Case("config-wrong-type", with_config("type.yaml", "features:\n  n_mels: forty\n"),
             r"field 'features.n_mels' expects int"),
        Case("config-bool-for-number", with_config("bool.yaml", "train:\n  epochs: true\n", "baseline"),
             r"field 'train.epochs' expects a number, got true"),
        Case("config-text-for-number", with_config("text.yaml", "train:\n  lr: fast\n", "baseline"),
             r"field 'train.lr' expects a number, got 'fast'"),
        Case("config-nan-constraint", with_config("nan.yaml", "nas:\n  max_latency_ms: .nan\n", "nas"),
             r"field 'nas.max_latency_ms' must be a finite number, got nan"),
        Case("config-nan-as-text", with_config("nantext.yaml", "nas:\n  min_accuracy: nan\n", "nas"),
             r"field 'nas.min_accuracy' must be a finite number"),
        Case("config-inf-json", with_config("inf.json", '{"nas": {"max_size_kb": Infinity}}', "nas"),
             r"field 'nas.max_size_kb' must be a finite number, got inf"),
        Case("config-inf-macs-toml", with_config("inf.toml", "[nas]\nmax_macs_m = inf\n", "nas"),
             r"field 'nas.max_macs_m' must be a finite number"),
        Case("config-inf-learning-rate", with_config("lr.yaml", "train:\n  lr: .inf\n", "baseline"),
             r"field 'train.lr' must be a finite number"),
        Case("config-memory-format", with_config("layout.yaml", "nas:\n  proxy:\n    memory_format: nhwc\n", "nas"),
             r"train.memory_format must be one of channels_last, contiguous, got 'nhwc'"),
        Case("config-nan-in-proxy", with_config("proxy.yaml", "nas:\n  proxy:\n    weight_decay: .nan\n", "nas"),
             r"field 'nas.proxy.weight_decay' must be a finite number"),
        Case("config-deep-nesting", with_config("deep.json", "[" * 100_000), r"deep\.json (nests too deeply|does not)"),
        Case("config-huge-file", lambda w: _features(w, "--config", _huge_config(w)), r"MiB, more than the 16 MiB"),
        Case("config-extension", with_config("settings.ini", "[data]\n"), r"expected \.yaml, \.yml, \.toml or \.json"),
        Case("config-missing", lambda w: _features(w, "--config", str(w.root / "none.yaml")), r"config file not found"),
        Case("config-huge-sample-rate", with_config("sr.yaml", "features:\n  sample_rate: 100000000000\n"),
             r"features.sample_rate must be in 1000\.\.768000 Hz"),
        Case("config-huge-clip", with_config("clip.yaml", "features:\n  clip_seconds: 1.0e+12\n"),
             r"one clip's features would be .* values, more than"),
        Case("config-tiny-hop", with_config("hop.yaml", "features:\n  hop_ms: 1.0e-300\n"),
             r"one clip's features would be|hop_ms"),
        Case("config-window-longer-than-clip", with_config("win.yaml", "features:\n  win_ms: 5000.0\n"),
             r"features.win_ms \(5000 ms\) must not exceed the clip"),
    ]  # fmt: skip


def _huge_config(w: World) -> str:
    path = w.root / "configs" / "huge.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(17 << 20)
    return str(path)


def _flag_cases() -> list[Case]:
    def nas(*flags: str) -> Argv:
        return lambda w: ["--mode", "nas", "--dataset-path", str(w.ds), *flags]

    def validate(*flags: str) -> Argv:
        return lambda w: ["--mode", "validate-latency", "--device-name", "dev", "--tables-dir",
                          w.tables("good"), *flags]  # fmt: skip

    def collect(*flags: str) -> Argv:
        return lambda w: ["--mode", "latency-table", "--tables-dir", str(w.root / "new-tables"), *flags]

    finite = r"must be a finite number, got {} \(leave it out for the default\) \(config field nas\.{}\)"
    return [
        Case("nas-max-latency-nan", nas("--max-latency-ms", "nan"),
             "--max-latency-ms " + finite.format("nan", "max_latency_ms")),
        Case("nas-max-latency-inf", nas("--max-latency-ms", "inf"),
             "--max-latency-ms " + finite.format("inf", "max_latency_ms")),
        Case("nas-max-size-nan", nas("--max-size-kb", "nan"), "--max-size-kb " + finite.format("nan", "max_size_kb")),
        Case("nas-min-accuracy-minus-inf", nas("--min-accuracy=-inf"),
             "--min-accuracy " + finite.format("-inf", "min_accuracy")),
        Case("nas-max-minutes-nan", nas("--max-minutes", "nan"), "--max-minutes must be a finite number"),
        Case("nas-max-latency-negative", nas("--max-latency-ms", "-1"), r"nas.max_latency_ms must be > 0"),
        Case("nas-population-huge", nas("--nas-population", str(4 * 10**12)), r"nas.population must be in 1\.\.10000"),
        Case("nas-population-not-multiple-of-4", nas("--nas-population", "6"), r"population must be a multiple of 4"),
        Case("nas-one-objective", nas("--objectives", "accuracy"), r"at least two distinct objectives"),
        Case("nas-unknown-device", nas("--devices", "nosuch"), r"unknown device 'nosuch'; known devices"),
        Case("nas-dask-bad-scheduler", nas("--backend", "dask", "--scheduler", "not a url"),
             r"--scheduler 'not a url' is not a dask scheduler address .*expected SCHEME://HOST:PORT"),
        Case("nas-dask-port-out-of-range", nas("--backend", "dask", "--scheduler", "tcp://h:99999"),
             r"not a dask scheduler address"),
        Case("nas-dask-no-scheduler", nas("--backend", "dask"), r"scheduler must be set for backend 'dask'"),
        Case("nas-measure-without-bound",
             lambda w: [*nas("--latency", "measure")(w), "--config", w.config("nobound.yaml",
                                                                               "nas:\n  max_latency_ms: null\n")],
             r"--latency measure needs --max-latency-ms"),
        Case("features-seed-negative", lambda w: _features(w, "--seed", "-1"), r"run.seed must be a whole number in 0"),
        Case("features-seed-huge", lambda w: _features(w, "--seed", str(2**80)), r"run.seed must be a whole number"),
        Case("features-jobs-zero", lambda w: _features(w, "--jobs", "0"), r"run.jobs must be -1 \(all cores\)"),
        Case("baseline-epochs-zero", lambda w: ["--mode", "baseline", "--epochs", "0"], r"train.epochs must be >= 1"),
        Case("baseline-unknown-model", lambda w: ["--mode", "baseline", "--models", "huge"], r"unknown baseline"),
        Case("validate-n-huge", validate("--n", str(10**12)), r"validate_n \(--n\) must be in 2\.\.10000"),
        Case("validate-n-tiny", validate("--n", "1"), r"validate_n \(--n\) must be in 2\.\."),
        Case("validate-threads-huge", validate("--threads", str(10**9)), r"latency.threads \(--threads\) must be in"),
        Case("validate-unknown-device", lambda w: ["--mode", "validate-latency", "--device-name", "nosuch"],
             r"unknown device 'nosuch'"),
        Case("table-threads-zero", collect("--device-name", "x", "--threads", "0"), r"latency.threads must be >= 1"),
        Case("table-max-minutes-inf", collect("--device-name", "x", "--max-minutes", "inf"),
             r"--max-minutes must be a finite number, got inf"),
        Case("table-no-device", collect(), r"--mode latency-table needs --device-name NAME"),
        Case("kit-no-device", lambda w: ["--mode", "latency-kit", "--kit-dir", str(w.root / "kit")],
             r"--mode latency-kit needs --device-name NAME"),
        Case("import-no-kit", lambda w: ["--mode", "latency-import", "--kit-dir", str(w.root), "--tables-dir",
                                         str(w.root / "imported")], r"is not a latency kit folder"),
        Case("validate-int8-of-fp32-table", validate("--precision", "int8"), r"times fp32 models, not int8"),
        Case("table-device-path", collect("--device-name", "../x"), r"latency.device must be a file-name-safe name"),
        Case("table-existing-bad-calibration",
             lambda w: ["--mode", "latency-table", "--device-name", "dev", "--tables-dir",
                        w.tables("cal-str", calibration={"scale": "fast"})],
             r"'calibration\.scale' must be a finite number > 0"),
        Case("table-existing-latin1-csv",
             lambda w: ["--mode", "latency-table", "--device-name", "dev", "--tables-dir", _own_table(w)],
             r"latency table .*dev\.csv is not UTF-8 text"),
    ]  # fmt: skip


def _own_table(w: World) -> str:
    """A table this machine collected (so a collection would continue it), whose CSV is not UTF-8."""
    from latency_tables.collect import _metadata
    from latency_tables.config import LatencyConfig

    folder = w.root / "tables" / "own"
    if not folder.exists():
        w.tables("own", csv_bytes="key\xe9\n".encode("latin-1"))
        meta = _metadata(LatencyConfig(device="dev"), "dev", (1, 40, 101), None)
        (folder / "dev.json").write_text(json.dumps(meta))
    return str(folder)


def _folder_cases() -> list[Case]:
    not_root = pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders: chmod cannot stop it")
    not_linux = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (no mkdir there)")
    return [
        Case("features-out-is-a-file", lambda w: _features(w, "--out", str(w.text)),
             r"--out .*notes\.txt is a file, not a folder"),
        Case("nas-out-under-a-file", lambda w: ["--mode", "nas", "--out", str(w.text / "run")],
             r"--out .*: the run folder cannot be created because .*notes\.txt is a file"),
        Case("baseline-out-read-only-fs", lambda w: ["--mode", "baseline", "--out", "/proc/edge-audio-nas/run"],
             r"the run folder /proc/edge-audio-nas/run is not writable .*give --out a folder you can write",
             (not_linux,)),
        Case("features-out-no-permission", lambda w: _features(w, "--out", str(_read_only(w) / "run")),
             r"is not writable .*give --out", (not_root,)),
        Case("features-cache-under-a-file", lambda w: _features(w, "--cache-dir", str(w.text / "cache")),
             r"--cache-dir .*: the feature cache cannot be created because .*notes\.txt is a file"),
        Case("features-cache-is-a-file", lambda w: _features(w, "--cache-dir", str(w.text)),
             r"--cache-dir .*notes\.txt is a file, not a folder"),
        Case("features-cache-read-only-fs", lambda w: _features(w, "--cache-dir", "/proc/edge-audio-nas/cache"),
             r"the feature cache /proc/edge-audio-nas/cache is not writable .*--cache-dir", (not_linux,)),
        Case("features-cache-no-permission", lambda w: _features(w, "--cache-dir", str(_read_only(w) / "c")),
             r"feature cache .* is not writable", (not_root,)),
        Case("table-tables-dir-under-a-file",
             lambda w: ["--mode", "latency-table", "--device-name", "x", "--tables-dir", str(w.text / "t")],
             r"--tables-dir .*: the latency tables folder cannot be created"),
        Case("validate-out-under-a-file", lambda w: ["--mode", "validate-latency", "--out", str(w.text / "v")],
             r"the run folder cannot be created because"),
        Case("full-out-under-a-file", lambda w: ["--mode", "full", "--out", str(w.text / "full")],
             r"the run folder cannot be created because"),
        Case("nas-new-search-over-old", lambda w: ["--mode", "nas", "--out", str(w.search)],
             r"already holds a search: continue it with --resume"),
    ]  # fmt: skip


def _read_only(w: World) -> Path:
    folder = w.root / "read-only"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    return folder


def _dataset_cases() -> list[Case]:
    def ds(path: Callable[[World], str], *rest: str) -> Argv:
        return lambda w: ["--mode", "features", "--dataset-path", path(w), *rest]

    outside = r"lists 1 path\(s\) outside the dataset folder .*set data.allow_outside_paths: true"
    return [
        Case("features-dataset-missing", ds(lambda w: str(w.root / "nowhere")), r"dataset path does not exist"),
        Case("features-no-layout", ds(lambda w: str(w.not_run)), r"no known dataset layout found"),
        Case("features-wrong-loader", ds(lambda w: str(w.ds), "--dataset", "esc50"), r"does not look like a 'esc50'"),
        Case("us8k-latin1-metadata", ds(lambda w: w.us8k("latin1", US8K_HEADER.encode() + b"\n" + LATIN1_ROW)),
             r"metadata file .*UrbanSound8K\.csv is not UTF-8 text .*expected UTF-8"),
        Case("us8k-binary-metadata", ds(lambda w: w.us8k("binary", b"\x00\x01\x02" * 100)),
             r"UrbanSound8K\.csv holds NUL bytes: it is a binary file"),
        Case("us8k-empty-metadata", ds(lambda w: w.us8k("empty", b"")), r"UrbanSound8K\.csv cannot be read as CSV"),
        Case("us8k-truncated-row", ds(lambda w: w.us8k("cut", rows=["2.wav,7,0"])),
             r"UrbanSound8K\.csv: fold must be an integer, got ''"),
        Case("us8k-missing-column", ds(lambda w: w.us8k("column", b"file,fold,class,fsID\nx.wav,1,dog,1\n")),
             r"lacks required column\(s\) slice_file_name"),
        Case("us8k-fold-not-a-number", ds(lambda w: w.us8k("fold", rows=["2.wav,7,0,1,1,one,0,dog"])),
             r"fold must be an integer, got 'one'"),
        Case("us8k-path-climbs-out", ds(lambda w: w.us8k("climb", rows=["../../../../notes.txt,7,0,1,1,1,0,dog"])),
             outside),
        Case("us8k-absolute-path", ds(lambda w: w.us8k("absolute", rows=[f"{w.text},7,0,1,1,1,0,dog"])), outside),
        Case("esc50-path-climbs-out", ds(lambda w: w.esc50("climb", "../../../notes.txt,1,0,dog,True,9,A")), outside),
        Case("csv-absolute-path", ds(lambda w: w.manifest("absolute", [f"{w.text},low"])), outside),
        Case("csv-path-climbs-out", ds(lambda w: w.manifest("climb", ["../../notes.txt,low"])), outside),
        Case("csv-latin1", ds(lambda w: w.manifest("latin1", data=b"file_path,label\n" + LATIN1_ROW)),
             r"metadata\.csv is not UTF-8 text"),
        Case("csv-bad-split", ds(lambda w: w.manifest("split", data=SPLIT_MANIFEST)),
             r"metadata\.csv, line 3: split 'holdout' is not a split name"),
        Case("csv-listed-twice", ds(lambda w: w.manifest("twice", ["clips/0.wav,low"])),
             r"is already listed on line 2"),
        Case("speech-list-latin1", ds(lambda w: w.speech("latin1", "yes/\xe9.wav\n".encode("latin-1"))),
             r"split list .*testing_list\.txt is not UTF-8 text"),
        Case("speech-list-climbs-out", ds(lambda w: w.speech("climb", b"../yes/a0_nohash_0.wav\n")),
             r"testing_list\.txt, line 1: '\.\./yes/a0_nohash_0\.wav' is not a path inside the dataset folder"),
    ]  # fmt: skip


def _table_cases() -> list[Case]:
    def validate(tables: Callable[[World], str]) -> Argv:
        return lambda w: ["--mode", "validate-latency", "--device-name", "dev", "--tables-dir", tables(w)]

    def nas(tables: Callable[[World], str]) -> Argv:
        return lambda w: ["--mode", "nas", "--dataset-path", str(w.ds), "--devices", "dev", "--tables-dir", tables(w)]

    meta = r"latency table metadata .*dev\.json: '{}' must be {}"
    return [
        Case("validate-calibration-string", validate(lambda w: w.tables("cal-str", calibration={"scale": "fast"})),
             meta.format(r"calibration\.scale", r"a finite number > 0, got \"fast\"")),
        Case("nas-calibration-string", nas(lambda w: w.tables("cal-str", calibration={"scale": "fast"})),
             meta.format(r"calibration\.scale", "a finite number")),
        Case("validate-calibration-nan", validate(lambda w: w.tables("cal-nan", calibration={"offset_ms": math.nan})),
             meta.format(r"calibration\.offset_ms", r"a finite number of milliseconds, got NaN")),
        Case("validate-calibration-list", validate(lambda w: w.tables("cal-list", calibration=[1.0, 0.0])),
             meta.format("calibration", "an object or null")),
        Case("validate-input-shape-text", validate(lambda w: w.tables("shape", input_shape=["1", "40", "101"])),
             meta.format("input_shape", "a list of positive whole numbers")),
        Case("validate-classes-bool", validate(lambda w: w.tables("classes", n_classes=True)),
             meta.format("n_classes", r"a whole number >= 2, got true")),
        Case("validate-meta-list", validate(lambda w: w.tables("list", meta_bytes=b"[1, 2]")),
             r"dev\.json must hold a JSON object, got list"),
        Case("validate-meta-missing-field", validate(lambda w: w.tables("nospace", meta_bytes=b'{"units": "ms"}')),
             r"dev\.json lacks 'space'"),
        Case("validate-meta-latin1", validate(lambda w: w.tables("latin1", meta_bytes=LATIN1_JSON)),
             r"latency table metadata .*dev\.json is not UTF-8 text"),
        Case("validate-meta-truncated", validate(lambda w: w.tables("cut", meta_bytes=b'{"space": "mel2d", "inpu')),
             r"dev\.json is not valid JSON: .* at line 1"),
        Case("validate-format-version", validate(lambda w: w.tables("version", format_version=99)),
             r"has format version 99; this version reads 1: re-collect it"),
        Case("validate-units", validate(lambda w: w.tables("units", units="s")), r"units must be 'ms', got 's'"),
        Case("validate-csv-latin1", validate(lambda w: w.tables("csv-latin1", csv_bytes="key\xe9\n".encode("latin-1"))),
             r"latency table .*dev\.csv is not UTF-8 text"),
        Case("validate-csv-truncated", validate(lambda w: w.tables("rows", csv_bytes=_table_csv() + b"dw_12x21x51_k")),
             r"dev\.csv, row 3 \(dw_12x21x51_k\): latency_ms must be a positive number of milliseconds, got ''"),
        Case("validate-csv-negative", validate(lambda w: w.tables("csv-neg", csv_bytes=_table_csv(-0.5))),
             r"latency_ms must be a positive number of milliseconds, got '-0\.5'"),
        Case("validate-csv-nan", validate(lambda w: w.tables("csv-nan", csv_bytes=_table_csv(math.nan))),
             r"latency_ms must be a positive number"),
        Case("validate-csv-missing-column", validate(lambda w: w.tables("csv-col", csv_bytes=b"key,latency_ms\n")),
             r"dev\.csv lacks column\(s\) kind"),
        Case("validate-other-input-shape", validate(lambda w: w.tables("other-shape", input_shape=(1, 64, 101))),
             r"was collected for space 'mel2d' with input shape \(1, 64, 101\)"),
        Case("nas-other-input-shape", nas(lambda w: w.tables("other-shape", input_shape=(1, 64, 101))),
             r"was collected for space 'mel2d' with input shape \(1, 64, 101\)"),
    ]  # fmt: skip


def _table_csv(latency: float = 0.05) -> bytes:
    header = "key,kind,latency_ms,model_ms,reference_ms,reference_key,runs,spread_pct"
    return f"{header}\nstem_1x40x101_8_k5x5_s2_relu,stem,{latency},{latency},0.0,,3,1.0\n".encode()


def _predict_cases() -> list[Case]:
    def predict(model: Callable[[World], str], *inputs: Callable[[World], str]) -> Argv:
        return lambda w: ["--mode", "predict", "--model", model(w), *(i(w) for i in inputs)]

    def clip(w: World) -> str:
        return str(w.bad_audio / "absurd_rate.wav")

    good_card = _card()
    return [
        Case("predict-no-model", lambda w: ["--mode", "predict", str(w.text)], r"--mode predict needs --model"),
        Case("predict-model-missing", predict(lambda w: str(w.root / "none.onnx"), clip), r"--model .* does not exist"),
        Case("predict-no-card", predict(lambda w: str(w.model), clip), r"has no model card model\.json beside it"),
        Case("predict-card-latin1", predict(lambda w: w.card("latin1", LATIN1_JSON), clip),
             r"model card .*latin1\.json is not valid JSON"),
        Case("predict-card-truncated", predict(lambda w: w.card("cut", json.dumps(good_card).encode()[:40]), clip),
             r"model card .*cut\.json is not valid JSON"),
        Case("predict-card-wrong-type",
             predict(lambda w: w.card("type", json.dumps(good_card | {"sample_rate": "fast"}).encode()), clip),
             r"field 'sample_rate' should be int, got 'fast'"),
        Case("predict-card-nan-norm",
             predict(lambda w: w.card("nan", json.dumps(good_card | {"norm_std": [math.nan] * 40}).encode()), clip),
             r"field 'norm_std' must hold 40 finite numbers"),
        Case("predict-no-inputs", predict(lambda w: str(w.card_model)), r"needs audio files or folders to classify"),
        Case("predict-only-bad-audio", predict(lambda w: str(w.card_model), lambda w: str(w.bad_audio)),
             r"none of the 2 input\(s\) is usable audio \(first: .*absurd_rate\.wav: header claims 8000 frames"),
        Case("predict-out-under-a-file",
             lambda w: [*predict(lambda w: str(w.card_model), clip)(w), "--out", str(w.text / "p.csv")],
             r"--out .*p\.csv: the predictions CSV cannot be written because .*notes\.txt is a file"),
    ]  # fmt: skip


def _run_folder_cases() -> list[Case]:
    return [
        Case("quantization-out-missing", lambda w: ["--mode", "quantization", "--out", str(w.root / "gone")],
             r"is not a folder; --mode quantization needs a run folder"),
        Case("quantization-no-features", lambda w: ["--mode", "quantization", "--out", str(w.not_run)],
             r"holds no features \(data/summary\.json\)"),
        Case("quantization-drop-nan", lambda w: ["--mode", "quantization", "--out", str(w.run), "--max-accuracy-drop",
                                                 "nan"], r"--max-accuracy-drop must be a finite number"),
        Case("quantization-bad-run-config", lambda w: ["--mode", "quantization", "--out", _bad_run(w)],
             r"run config .*config\.json is not UTF-8 text"),
        Case("reports-out-is-a-file", lambda w: ["--mode", "reports", "--out", str(w.text)], r"is not a folder"),
        Case("reports-not-a-run", lambda w: ["--mode", "reports", "--out", str(w.not_run)], r"is not a run folder"),
        Case("reports-out-dir-under-a-file",
             lambda w: ["--mode", "reports", "--out", str(w.run), "--config",
                        w.config("reports.yaml", f"reports:\n  out_dir: {w.text / 'r'}\n")],
             r"reports.out_dir .*: the reports folder cannot be created because"),
        Case("reports-compare-missing",
             lambda w: ["--mode", "reports", "--out", str(w.run), "--compare", str(w.root / "other")],
             r"--compare .*other is not a folder \(expected the --out of another run\)"),
        Case("full-nan-constraint", lambda w: ["--mode", "full", "--max-latency-ms", "nan"],
             r"--max-latency-ms must be a finite number"),
        Case("full-config-latin1", lambda w: ["--mode", "full", "--config", w.config("full.json", LATIN1_JSON)],
             r"is not UTF-8 text"),
        Case("features-existing-run-bad-dataset",
             lambda w: ["--mode", "features", "--out", str(w.run), "--dataset-path", str(w.root / "nowhere")],
             r"dataset path does not exist"),
        Case("baseline-existing-run-bad-metadata",
             lambda w: ["--mode", "baseline", "--out", str(w.run), "--dataset-path", w.us8k("climb2", rows=[
                 "../../../../notes.txt,7,0,1,1,1,0,dog"])],
             r"outside the dataset folder"),
    ]  # fmt: skip


def _bad_run(w: World) -> str:
    folder = w.root / "bad-run"
    if not folder.exists():
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "summary.json").write_text("{}")
        (folder / "config.json").write_bytes(b'{"run": {"name": "\xe9"}}')
    return str(folder)


CASES = _cases()


def test_the_harness_covers_every_mode_with_forty_kinds_of_bad_input():
    from pipeline.stages import STAGES

    modes = {c.id.split("-")[0] for c in CASES}
    aliases = {"config": "features", "us8k": "features", "esc50": "features", "csv": "features",
               "speech": "features", "table": "latency-table", "validate": "validate-latency", "kit": "latency-kit",
               "import": "latency-import"}  # fmt: skip
    covered = {aliases.get(m, m) for m in modes}
    assert {s.mode for s in STAGES} <= covered
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_gives_one_clear_line(case: Case, world: World, tmp_path, capsys):
    argv = case.argv(world)
    fresh = None
    if "--out" not in argv:
        fresh = tmp_path / "run"
        argv = [*argv, "--out", str(fresh)]
    before = fingerprint(world.root)
    capsys.readouterr()
    code = main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(case.expect, lines[0]), f"{lines[0]!r} does not match {case.expect!r}"
    assert out == "", "a bad input must be refused before any work"
    assert fingerprint(world.root) == before, "a file the user had was changed"
    assert fresh is None or not fresh.exists(), "a failed start left a run folder behind"


# -- fuzzing where it is cheap ------------------------------------------------------------------

EXAMPLES = int(os.environ.get("BAD_INPUT_EXAMPLES", "150"))  # more for a longer fuzzing session
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=300))
def test_text_reader_decodes_utf8_or_names_the_encoding(tmp_path, data):
    from common.text_files import read_user_text

    path = tmp_path / "f.csv"
    path.write_bytes(data)
    try:
        text = read_user_text(path, "metadata file")
    except UserError as exc:
        assert str(path) in str(exc) and ("UTF-8" in str(exc) or "NUL" in str(exc))
        return
    assert text == data.decode("utf-8-sig") and "\x00" not in text


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.floats(min_value=-10, max_value=1e4), st.integers(-3, 100), st.text(max_size=8),
    st.sampled_from(["nan", "inf", "1e-3", "fsdd", "speaker", "accuracy"]),
    st.lists(st.one_of(st.text(max_size=6), st.floats(), st.sampled_from(["accuracy", "latency_ms"])), max_size=3),
)  # fmt: skip


@st.composite
def _configs(draw) -> dict:
    """Config files: real sections and field names (nested sections too) holding any kind of value."""
    import typing

    from pipeline.config import PipelineConfig

    def section(cls: type, depth: int) -> dict:
        hints = typing.get_type_hints(cls)
        names = draw(st.lists(st.sampled_from(sorted(hints)), max_size=3, unique=True))
        nested = {n for n in names if dataclasses.is_dataclass(hints[n]) and depth < 2 and draw(st.integers(0, 3))}
        return {n: section(hints[n], depth + 1) if n in nested else draw(_VALUES) for n in names}

    return section(PipelineConfig, 0)


@FUZZ
@given(data=_configs(), form=st.sampled_from(["yaml", "json"]))
def test_any_config_file_resolves_or_names_the_problem(tmp_path, data, form):
    from pipeline.config import PipelineConfig, build_config

    path = tmp_path / f"c.{form}"
    path.write_text(yaml.safe_dump(data) if form == "yaml" else json.dumps(data))
    try:
        cfg = build_config(path, {})
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        event(str(exc).split(":")[1][:40] if ":" in str(exc) else str(exc)[:40])
        return
    event("resolved")
    assert isinstance(cfg, PipelineConfig)
    numbers = [v for section in dataclasses.asdict(cfg).values() for v in _leaves(section)]
    assert all(math.isfinite(v) for v in numbers if isinstance(v, float))


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@FUZZ
@given(address=st.one_of(st.text(max_size=30), st.from_regex(r"\A(tcp|tls|ws|inproc|foo)://[a-z0-9.:]{0,12}\Z")))
def test_scheduler_address_is_accepted_or_refused_in_one_line(address):
    pytest.importorskip("distributed")
    from nas.backends import check_scheduler_address

    try:
        assert check_scheduler_address(address) == address
    except UserError as exc:
        assert "expected SCHEME://HOST:PORT" in str(exc)


@FUZZ
@given(
    frames=st.integers(min_value=-1, max_value=2**40), channels=st.integers(min_value=-1, max_value=2**16),
    rate=st.integers(min_value=-1, max_value=2**32), target=st.sampled_from([8000, 16000, 48000]),
)  # fmt: skip
def test_audio_header_bound(frames, channels, rate, target):
    from train.audio_io import MAX_DECODED_BYTES, header_problem

    problem = header_problem(frames, channels, rate, target)
    if problem is None:
        assert rate > 0 and channels > 0 and frames >= 0
        assert 4 * max(frames * channels, frames * target / rate) <= MAX_DECODED_BYTES + 4
    else:
        assert problem.startswith(f"header claims {frames} frames")


@FUZZ
@given(parts=st.lists(st.sampled_from(["a", "b", "..", ".", "c.wav", "/abs"]), min_size=1, max_size=6))
def test_metadata_paths_outside_the_folder_are_found(parts):
    from train.datasets.metadata import leaves_folder

    root = Path("/data/set")
    depth, lowest = 0, 0  # no part is named "set": a path that climbs out never comes back in
    for part in parts:
        depth = 1 if part == "/abs" and (lowest := -1) else depth - 1 if part == ".." else depth + (part != ".")
        lowest = min(lowest, depth)
    assert leaves_folder(root.joinpath(*parts), root) == (lowest < 0)


# -- one regression test per row of issue 16 ----------------------------------------------------


def test_row1_non_utf8_metadata_csv_and_config_name_the_file_and_the_encoding(cli_error, tmp_path):
    root = tmp_path / "us8k"
    write_wav(root / "audio" / "fold1" / "a.wav", 400)
    (root / "metadata").mkdir()
    (root / "metadata" / "UrbanSound8K.csv").write_bytes(US8K_HEADER.encode() + b"\n" + LATIN1_ROW + b"\n")
    msg = cli_error(["--dataset-path", str(root)])
    assert "UrbanSound8K.csv is not UTF-8 text" in msg and "byte 0xe9" in msg and "expected UTF-8" in msg
    config = tmp_path / "c.yaml"
    config.write_bytes("data:\n  split: caf\xe9\n".encode("latin-1"))
    assert f"config file {config} is not UTF-8 text" in cli_error(["--config", str(config)])


@pytest.mark.parametrize("field", ["max_latency_ms", "max_size_kb", "max_macs_m", "min_accuracy"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_row2_nan_or_inf_constraint_in_a_config_file_names_the_field(cli_error, tmp_path, field, value):
    config = tmp_path / "c.yaml"
    config.write_text(f"nas:\n  {field}: {value}\n")
    msg = cli_error(["--mode", "nas", "--config", str(config)])
    assert f"field 'nas.{field}' must be a finite number" in msg


def test_row2_nan_constraint_flag_names_the_flag(cli_error):
    msg = cli_error(["--mode", "nas", "--max-latency-ms", "nan"])
    assert msg.startswith("error: --max-latency-ms must be a finite number, got nan")


def test_row3_unwritable_out_and_cache_name_the_folder_and_the_flag(cli_error, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out" in cli_error(["--out", str(blocker / "run")]) and not (blocker / "run").exists()
    assert "--cache-dir" in cli_error(["--cache-dir", str(blocker / "cache"), "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
    if Path("/proc/self").is_dir():  # a file system where nothing can be created, even by root
        assert "/proc/x/run is not writable" in cli_error(["--out", "/proc/x/run"])
        assert "give --cache-dir a folder you can write" in cli_error(["--cache-dir", "/proc/x/cache"])


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders: chmod cannot stop it")
def test_row3_folder_without_write_permission(cli_error, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert f"the run folder {locked / 'run'} is not writable" in cli_error(["--out", str(locked / "run")])
        assert "give --cache-dir" in cli_error(["--cache-dir", str(locked), "--out", str(tmp_path / "r")])
    finally:
        locked.chmod(0o755)


def test_row4_out_naming_an_existing_file_is_refused(cli_error, tmp_path):
    file = tmp_path / "results.txt"
    file.write_text("mine")
    assert "is a file, not a folder" in cli_error(["--out", str(file)])
    assert file.read_text() == "mine"


def test_row5_calibration_holding_a_string_is_named_in_validate_latency(cli_error, tmp_path):
    write_table(tmp_path / "t", "dev", TABLE_OPS, calibration={"scale": "1.1", "offset_ms": 0.0})
    msg = cli_error(["--mode", "validate-latency", "--device-name", "dev", "--tables-dir", str(tmp_path / "t")])
    assert "'calibration.scale' must be a finite number > 0, got \"1.1\"" in msg


@pytest.mark.timeout(120)
def test_row6_bad_dask_scheduler_prints_one_line_and_no_traceback(tmp_path):
    pytest.importorskip("distributed")
    proc = subprocess.run(
        [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "nas", "--backend", "dask", "--scheduler",
         "not a url", "--out", str(tmp_path / "run"), "--no-progress"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: --scheduler 'not a url' is not a dask scheduler address")
    assert not (tmp_path / "run").exists()


def test_row7_jobs_are_capped_at_cores_and_candidates(recwarn):
    from common.workers import available_cores, worker_count
    from nas.backends import make_backend
    from nas.config import SearchConfig
    from pipeline.config import build_config
    from pipeline.nas_stage import search_config

    cfg = build_config(None, {"run": {"jobs": 1000}, "nas": {"population": 4, "backend": "loky"}})
    jobs = search_config(cfg).jobs
    assert jobs == min(available_cores(), 4)
    assert any("--jobs 1000 is more than can run at once" in str(w.message) for w in recwarn)
    backend = make_backend(SearchConfig(population=4, jobs=1000))  # the engine alone: no more than a generation
    assert backend.window == 4 and backend.pool is None
    assert worker_count(1000, 3, "baseline runs") == min(available_cores(), 3)
    assert worker_count(-1, 1000, "chunks") == available_cores()  # -1 (all cores) is never warned about
    assert len([w for w in recwarn if "--jobs -1" in str(w.message)]) == 0


def test_row8_wav_header_with_an_absurd_sample_rate_is_skipped_and_listed(tmp_path, capsys):
    from train.audio_io import BadAudioError, read_audio

    root = make_folders(tmp_path / "data", per_class=8)
    bad = with_rate(write_wav(root / "cat" / "zz_absurd.wav", 440, seconds=0.5), 1)
    with pytest.raises(BadAudioError, match=r"header claims 8000 frames of 1 channel\(s\) at 1 Hz"):
        read_audio(bad, 16000)
    out = tmp_path / "run"
    assert main([*_features_of(root), "--out", str(out)]) == 0, capsys.readouterr().err
    listed = (out / "skipped_files.csv").read_text()
    assert "zz_absurd.wav" in listed and "more than the 256 MiB allowed for one file" in listed


def test_row9_urbansound8k_row_climbing_out_is_refused_unless_allowed(cli_error, tmp_path):
    from train.datasets import load_dataset

    root = tmp_path / "us8k"
    for k in range(2):
        write_wav(root / "audio" / "fold1" / f"{k}.wav", 300 + 100 * k)
    outside = write_wav(tmp_path / "elsewhere.wav", 700)
    rows = [US8K_HEADER, "0.wav,1,0,1,1,1,0,dog", "1.wav,2,0,1,1,1,1,car", "../../../elsewhere.wav,3,0,1,1,1,0,dog"]
    (root / "metadata").mkdir()
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")
    msg = cli_error(["--dataset-path", str(root)])
    assert "UrbanSound8K.csv lists 1 path(s) outside the dataset folder" in msg and str(outside) in msg
    assert "data.allow_outside_paths: true" in msg
    dataset = load_dataset(root, allow_outside=True)  # followed only when asked for
    assert outside in [c.path.resolve() for c in dataset.clips]


def _features_of(root: Path) -> list[str]:
    """A real (tiny, in-process) features run on ``root``."""
    return ["--mode", "features", "--dataset-path", str(root), "--split", "stratified", "--jobs", "1", "--no-progress"]


def test_failed_start_leaves_an_existing_run_folder_as_it_was(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_features_of(make_folders(tmp_path / "d")), "--out", str(run)]) == 0
    before = fingerprint(run)
    assert main([*_features_of(tmp_path / "gone"), "--out", str(run)]) == 2
    assert "dataset path does not exist" in capsys.readouterr().err
    assert fingerprint(run) == before  # config.json of the run it holds, and no stages.jsonl line for the refusal


def test_failed_start_into_a_new_nested_folder_leaves_nothing(tmp_path, capsys):
    assert main([*_features_of(tmp_path / "gone"), "--out", str(tmp_path / "a" / "b" / "run")]) == 2
    assert "dataset path does not exist" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@FUZZ
@given(cut=st.integers(min_value=0, max_value=120), noise=st.binary(max_size=64), rate=st.integers(0, 2**32 - 1))
def test_damaged_wav_reads_or_is_a_bad_file(tmp_path, cut, noise, rate):
    from train.audio_io import BadAudioError, read_audio

    path = write_wav(tmp_path / "a.wav", 440, seconds=0.005)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 24, rate)  # any sample rate the header can hold
    path.write_bytes(bytes(data[: len(data) - cut]) + noise)
    try:
        samples = read_audio(path, 16000)
    except BadAudioError as exc:
        assert str(exc)
        return
    assert samples.dtype == np.float32 and np.isfinite(samples).all()
