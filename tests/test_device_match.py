"""Which machine a latency describes: tables of another CPU are labelled in the search and refused by validation."""

from __future__ import annotations

from pathlib import Path

from latency_fixtures import latencies_for, write_table

from latency_tables.device_match import describe_cpu, match_this_machine, this_machine
from latency_tables.keys import spec_ops
from latency_tables.registry import SHIPPED_TABLES, tables_dirs, user_tables_dir
from pipeline.config import build_config
from pipeline.nas_stage import device_lines
from search_spaces import create_search_space

SPACE = create_search_space("mel2d")
SHAPE = (1, 40, 101)
OTHER = {"cpu_model": "Cortex-A72", "cpu_flags": ["neon", "asimd"], "machine": "aarch64", "cpu_count": 4}


def _table(folder: Path, device: dict | None) -> None:
    ops = spec_ops(SPACE, SPACE.parse("c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0"), 10, SHAPE)
    extra = {"device": device} if device is not None else {}
    write_table(folder, "dev", latencies_for(ops), **extra)


def test_this_machine_matches_itself_and_not_another_cpu():
    here = this_machine()
    assert match_this_machine({"device": here}).same
    other = match_this_machine({"device": OTHER})
    assert other.known and not other.same
    assert "another machine: Cortex-A72 (neon, asimd), 4 cores" in other.label()
    assert not match_this_machine({}).known and "not recorded" in match_this_machine({}).label()
    assert describe_cpu(None) == "an unrecorded machine"


def test_the_search_says_when_its_latencies_are_another_cpus(tmp_path):
    _table(tmp_path / "tables", OTHER)
    cfg = build_config(None, {"latency": {"tables_dir": str(tmp_path / "tables")}, "nas": {"devices": ["dev"]}})
    lines = device_lines(cfg, SHAPE)
    assert "latency_ms_dev: fp32 models, predicted by the table of dev" in lines[0]
    assert "measured on another machine: Cortex-A72" in lines[0]
    assert "note: these latencies are another CPU's, not this machine's" in lines[-1]
    assert "--mode latency-table" in lines[-1]
    _table(tmp_path / "mine", this_machine())
    cfg = build_config(None, {"latency": {"tables_dir": str(tmp_path / "mine")}, "nas": {"devices": ["dev"]}})
    lines = device_lines(cfg, SHAPE)
    assert len(lines) == 1 and "measured on this machine" in lines[0]


def test_validating_another_cpus_table_is_refused(cli_error, tmp_path):
    _table(tmp_path / "tables", OTHER)
    msg = cli_error(["--mode", "validate-latency", "--device-name", "dev", "--tables-dir", str(tmp_path / "tables"),
                     "--out", str(tmp_path / "run")])  # fmt: skip
    assert "table 'dev' was measured on Cortex-A72 (neon, asimd), 4 cores; this machine is" in msg
    assert "--mode latency-table --device-name NAME" in msg
    assert not (tmp_path / "run" / "latency").exists()


def test_collected_tables_go_to_a_user_folder_never_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_AUDIO_NAS_TABLES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_tables_dir() == tmp_path / "data" / "edge-audio-nas" / "tables"
    assert tables_dirs() == [user_tables_dir(), SHIPPED_TABLES]
    monkeypatch.setenv("EDGE_AUDIO_NAS_TABLES", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert user_tables_dir() == tmp_path / "a"
    assert tables_dirs() == [tmp_path / "a", tmp_path / "b", SHIPPED_TABLES]
