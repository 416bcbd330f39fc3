"""The audio search with --promote: low-epoch rungs on the built-in data, flags and bad input."""

from __future__ import annotations

import csv
import json

import pytest

from complete_pipeline import build_parser, main, overrides_from_args
from pipeline.config import build_config
from pipeline.nas_config import NasConfig, SearchSettings
from pipeline.nas_stage import search_config
from train.train_config import TrainConfig

TINY = ["--nas-population", "8", "--nas-generations", "1", "--proxy-epochs", "2", "--max-latency-ms", "0.3",
        "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip


def test_a_promoted_search_trains_a_share_to_the_full_proxy_and_labels_the_rest(tmp_path, capsys, cli_error) -> None:
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--promote", "0.25"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "multi-fidelity: every new candidate trained 1 -> 2 epochs in rungs, the best 25%" in printed
    rung0 = [json.loads(line) for line in (out / "nas" / "rung0.jsonl").read_text().splitlines()]
    final = {r["key"]: r for r in map(json.loads, (out / "nas" / "journal.jsonl").read_text().splitlines())}
    assert rung0 and all(r["metrics"]["epochs"] == 1 for r in rung0)
    trained = [r for r in final.values() if r["status"] == "ok"]
    full = [r for r in trained if r.get("rung") is None]
    low = [r for r in trained if r.get("rung") == 0]
    assert full and low and len(trained) == len(rung0)
    assert all(r["metrics"]["epochs"] == 2 for r in full) and all(r["metrics"]["epochs"] == 1 for r in low)
    with open(out / "nas" / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["fidelity"] for row in rows} <= {"full", "1 epoch(s) of proxy training"}
    assert "promote" in cli_error(["--mode", "nas", "--out", str(out), *TINY, "--resume", "--promote", "0.5"])


def test_promote_alone_defaults_to_one_epoch_and_low_epochs_are_checked() -> None:
    promote = SearchSettings(promote=0.5)
    assert NasConfig(search=promote).low_epochs == (1,)
    assert NasConfig(search=promote, low_epochs=[1, 2], proxy=TrainConfig(epochs=6)).low_epochs == (1, 2)
    with pytest.raises(ValueError, match=r"needs nas\.search\.promote"):
        NasConfig(low_epochs=(1,))
    with pytest.raises(ValueError, match="fewer epochs than the full proxy"):
        NasConfig(search=promote, low_epochs=(4,))
    with pytest.raises(ValueError, match="increasing order"):
        NasConfig(search=promote, low_epochs=(2, 1), proxy=TrainConfig(epochs=6))
    with pytest.raises(ValueError, match="a 1-epoch proxy has none"):
        NasConfig(search=promote, proxy=TrainConfig(epochs=1))


def test_flags_reach_the_config_and_the_engine() -> None:
    argv = ["--mode", "nas", "--promote", "0.3", "--low-epochs", "1,2", "--proxy-epochs", "4"]
    cfg = build_config(None, overrides_from_args(build_parser().parse_args(argv)))
    assert cfg.nas.search.promote == 0.3 and cfg.nas.low_epochs == (1, 2)
    assert search_config(cfg).promote == 0.3


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--promote", "1.5"], "promote must be the share of a rung's candidates"),
        (["--promote", "0.25", "--low-epochs", "4"], "fewer epochs than the full proxy"),
        (["--low-epochs", "1"], "needs nas.search.promote"),
    ],
)
def test_bad_multi_fidelity_settings_are_one_line_errors(cli_error, argv: list[str], named: str) -> None:
    assert named in cli_error(["--mode", "nas", *argv])


def test_low_epochs_that_are_not_numbers_are_an_argparse_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--mode", "nas", "--promote", "0.25", "--low-epochs", "one"])
    assert exit_info.value.code == 2
    assert "argument --low-epochs: expected whole numbers separated by commas (e.g. 1,2), got 'one'" in (
        capsys.readouterr().err
    )
