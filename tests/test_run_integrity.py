"""A run folder's results stay with their data: refused commands change no file, --resume always continues."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audio_trees import make_folders

from complete_pipeline import main

REPO = Path(__file__).resolve().parents[1]
SEARCH = ["--nas-population", "4", "--nas-generations", "1", "--proxy-epochs", "1", "--backend", "inline",
          "--jobs", "1", "--no-progress"]  # fmt: skip


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished tiny search on a folder dataset: (data root, run folder, cache folder)."""
    base = tmp_path_factory.mktemp("integrity")
    root = make_folders(base / "data", per_class=8)
    run, cache = base / "run", base / "cache"
    argv = ["--mode", "nas", "--dataset-path", str(root), "--split", "stratified", "--out", str(run),
            "--cache-dir", str(cache), *SEARCH]  # fmt: skip
    assert main(argv) == 0
    return root, run, cache


def test_features_with_other_settings_into_a_search_folder_are_refused_and_change_nothing(searched, cli_error,
                                                                                          tmp_path):  # fmt: skip
    _, run, cache = searched
    before = _hashes(run)
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  n_mels: 16\n")
    msg = cli_error(["--mode", "features", "--out", str(run), "--cache-dir", str(cache), "--config", str(config)])
    assert "holds results made from other data" in msg and "nothing was changed" in msg
    assert _hashes(run) == before


def test_a_refused_resume_with_another_split_changes_nothing(searched, cli_error, tmp_path):
    _, run, cache = searched
    before = _hashes(run)
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  val_fraction: 0.3\n")
    msg = cli_error(["--mode", "nas", "--out", str(run), "--cache-dir", str(cache), "--config", str(config),
                     "--resume", *SEARCH])  # fmt: skip
    assert "other data" in msg
    assert _hashes(run) == before


def test_a_resume_with_fewer_generations_is_refused_and_rewrites_nothing(searched, cli_error):
    _, run, cache = searched
    before = _hashes(run)
    fewer = [*SEARCH]
    fewer[fewer.index("--nas-generations") + 1] = "0"
    msg = cli_error(["--mode", "nas", "--out", str(run), "--cache-dir", str(cache), "--resume", *fewer])
    assert "has run generations 0..1, more than the 0 asked for" in msg and "nothing was run or rewritten" in msg
    assert _hashes(run) == before


def test_features_with_the_same_data_keep_the_search_settings_in_config_json(searched, capsys):
    _, run, cache = searched
    recorded = json.loads((run / "config.json").read_text())
    assert main(["--mode", "features", "--out", str(run), "--cache-dir", str(cache), "--no-progress"]) == 0
    after = json.loads((run / "config.json").read_text())
    assert after["nas"] == recorded["nas"] and after["data"] == recorded["data"]
    assert after["nas"]["population"] == 4  # not reset to the default by a mode that does not search


def test_resume_after_a_kill_during_feature_extraction_starts_the_search(tmp_path):
    """The README's promise: killed at any moment, the same command with --resume continues."""
    root = make_folders(tmp_path / "data", classes=tuple(f"c{i}" for i in range(6)), per_class=40)
    run = tmp_path / "run"
    argv = [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "nas", "--dataset-path", str(root),
            "--split", "stratified", "--out", str(run), "--cache-dir", str(tmp_path / "cache"),
            *[a for a in SEARCH if a != "--no-progress"]]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the first progress line: extraction has begun
        line = proc.stderr.readline()
        if line.startswith("features (folders):") or not line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run / "nas" / "journal.jsonl").exists(), "killed too late: the search had started"
    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "holds no search yet" in resumed.stdout or "nothing to continue yet" in resumed.stdout
    assert (run / "nas" / "pareto.csv").is_file()


def test_resume_into_a_missing_folder_starts_the_run(tmp_path, capsys):
    root = make_folders(tmp_path / "data", per_class=4)
    run = tmp_path / "never-started"
    argv = ["--mode", "features", "--dataset-path", str(root), "--split", "stratified", "--out", str(run),
            "--cache-dir", str(tmp_path / "cache"), "--resume", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "nothing to continue yet" in capsys.readouterr().out
    assert (run / "data" / "summary.json").is_file()


def _descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize(("mode", "started"), [("features", "features (folders):"), ("baseline", "training baselines")])
def test_workers_die_with_their_parent(tmp_path, mode, started):
    """The OOM killer kills the parent alone: its worker pool must not run on."""
    root = make_folders(tmp_path / "data", classes=tuple(f"c{i}" for i in range(6)), per_class=60)
    argv = [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", mode, "--dataset-path", str(root),
            "--split", "stratified", "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
            "--jobs", "2", "--epochs", "50"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    workers: set[int] = set()
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        if started in line:
            while time.monotonic() < deadline and len(workers) < 2:  # both workers started
                workers = {p for p in _descendants(proc.pid) if "loky" in _cmdline(p)}
                time.sleep(0.2)
            break
    assert workers, "no worker process was seen"
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone
    proc.wait(timeout=30)
    end = time.monotonic() + 60  # a worker notices within a second or two; a loaded machine can take 20 s and more
    while time.monotonic() < end and any(_alive(p) for p in workers):
        time.sleep(0.5)
    left = [p for p in workers if _alive(p)]
    for p in left:  # do not leave them behind even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"{len(left)} worker(s) still running 60 s after their parent was killed"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (skips where this user cannot mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip() or done.returncode})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_feature_cache_on_a_full_disk_is_one_line(small_disk, tmp_path, capsys):
    root = make_folders(tmp_path / "data", classes=tuple(f"c{i}" for i in range(10)), per_class=30)  # 4.8 MB
    argv = ["--mode", "features", "--dataset-path", str(root), "--split", "stratified", "--out", str(tmp_path / "r"),
            "--cache-dir", str(small_disk / "cache"), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space for the feature cache in") and "MiB are free" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not list((small_disk / "cache" / "features").glob("*")), "the build folder was left behind"


def test_a_disk_filling_up_during_a_search_is_one_line_and_resumable(small_disk, tmp_path):
    root = make_folders(tmp_path / "data", per_class=8)
    run = small_disk / "run"
    more = [*SEARCH]
    more[more.index("--nas-generations") + 1] = "30"
    argv = [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "nas", "--dataset-path", str(root),
            "--split", "stratified", "--out", str(run), "--cache-dir", str(tmp_path / "cache"), *more]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    journal = run / "nas" / "journal.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (journal.exists() and journal.stat().st_size > 0):
        time.sleep(0.2)
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # fill the disk up
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert "error: no space left on the disk" in err and "--resume" in err
    filler.unlink()
    fewer = [a if a != "30" else "2" for a in argv]
    resumed = subprocess.run([*fewer, "--resume"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "nas" / "pareto.csv").is_file()


def test_cache_folders_get_the_permissions_of_the_umask(searched):
    """Another user (or a worker under another account) can read a shared cache entry."""
    _, _, cache = searched
    umask = os.umask(0)
    os.umask(umask)
    entries = [p for p in (cache / "features").iterdir() if not p.name.startswith(".")]
    assert entries
    for entry in entries:
        assert entry.stat().st_mode & 0o777 == 0o777 & ~umask, oct(entry.stat().st_mode)
        for file in entry.iterdir():
            assert file.stat().st_mode & 0o666 == 0o666 & ~umask, (file, oct(file.stat().st_mode))


def _edit_lines(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize(
    ("kind", "edit", "expected"),
    [
        ("us8k", lambda rows: [*rows, rows[1]], r"line \d+: .*\.wav is already listed on line 2"),
        ("us8k", lambda rows: [rows[0], rows[1].replace(",air_conditioner", ",NaN"), *rows[2:]],
         r"line 2: missing label 'NaN'"),
        ("us8k", lambda rows: [rows[0], rows[1].replace(",1,0,air", ",11,0,air"), *rows[2:]],
         r"line 2: fold 11 is not one of the official folds 1\.\.10"),
        ("esc50", lambda rows: [*rows, rows[3]], r"line \d+: .*\.wav is already listed on line 4"),
        ("esc50", lambda rows: [rows[0], rows[1].replace(",dog,", ",,"), *rows[2:]], r"line 2: empty label"),
        ("esc50", lambda rows: [rows[0], rows[1].replace("wav,1,", "wav,0,"), *rows[2:]],
         r"line 2: fold 0 is not one of the official folds 1\.\.5"),
        ("csv", lambda rows: [rows[0], rows[1].replace(",low", ",null"), *rows[2:]], r"line 2: missing label 'null'"),
    ],
)  # fmt: skip
def test_metadata_loaders_share_the_row_checks(tmp_path, kind, edit, expected):
    from audio_trees import make_csv, make_esc50, make_urbansound8k

    from common.errors import UserError
    from train.datasets import load_dataset

    make = {"us8k": make_urbansound8k, "esc50": make_esc50, "csv": make_csv}[kind]
    root = make(tmp_path / kind)
    meta = {"us8k": root / "metadata" / "UrbanSound8K.csv", "esc50": root / "meta" / "esc50.csv"}.get(kind, root)
    load_dataset(root)  # the tree as built loads
    _edit_lines(meta, edit)
    with pytest.raises(UserError, match=expected):
        load_dataset(root)


def test_a_class_missing_from_a_split_is_said(tmp_path, caplog):
    from audio_trees import write_wav

    rows = ["file_path,label,split"]
    for ci, name in enumerate(("low", "mid", "high")):
        for k in range(6):
            rel = f"clips/{name}_{k}.wav"
            write_wav(tmp_path / "ds" / rel, 200 + 400 * ci + k)
            split = "train" if k < 3 else ("val" if k < 5 else "test")
            if name == "high" and split == "test":
                split = "train"  # no "high" clip in the test split
            rows.append(f"{rel},{name},{split}")
    (tmp_path / "ds" / "metadata.csv").write_text("\n".join(rows) + "\n")
    argv = ["--mode", "features", "--dataset-path", str(tmp_path / "ds"), "--out", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    assert "1 class(es) have no clip in the test split" in caplog.text and ": high;" in caplog.text


def test_a_later_mode_keeps_the_sections_it_does_not_use(tmp_path):
    """--mode nas after --mode baseline --epochs 3 --seed 7: quantization must still read 3 epochs and seed 7."""
    from pipeline.config import build_config
    from pipeline.run_folder import SHARED_SECTIONS, record_config, run_folder_config
    from pipeline.stages import get_stage

    run = tmp_path / "run"
    run.mkdir()
    record_config(run, build_config(None, {"train": {"epochs": 3}, "run": {"seed": 7}}))
    nas = get_stage("nas")
    cfg = build_config(None, {}, base=run_folder_config(nas, str(run)))  # what --mode nas --out RUN starts from
    assert cfg.run.seed == 7  # the run section is shared by the folder's modes
    record_config(run, cfg, nas.recorded_sections(SHARED_SECTIONS))
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["train"]["epochs"] == 3 and recorded["run"]["seed"] == 7


def test_full_refuses_cv_before_training(cli_error):
    assert "--mode full needs them trained on the run's split" in cli_error(["--mode", "full", "--cv", "3"])


def test_a_run_folder_from_before_db_reference_keeps_its_absolute_features(tmp_path):
    """A config.json written before features.db_reference existed was made re 1.0; resuming it keeps that."""
    import json

    from pipeline.run_folder import read_run_config

    (tmp_path / "config.json").write_text(json.dumps({"features": {"n_mels": 40}, "run": {"seed": 0}}))
    assert read_run_config(tmp_path)["features"] == {"db_reference": "absolute", "top_db": 80.0, "n_mels": 40}
    (tmp_path / "config.json").write_text(json.dumps({"features": {"db_reference": "peak"}}))
    assert read_run_config(tmp_path)["features"]["db_reference"] == "peak"
