"""Config resolution: defaults < file (YAML/TOML/JSON) < flags; unknown keys and bad values named."""

from __future__ import annotations

import json

import pytest

from common.errors import UserError
from pipeline.config import PipelineConfig, build_config


def test_defaults():
    cfg = build_config(None, {})
    assert cfg == PipelineConfig()
    assert cfg.data.dataset == "synthetic" and cfg.features.n_mels == 40 and cfg.features.sample_rate == 16000


def test_yaml_then_flags_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  split: stratified\n  seed: 5\nfeatures:\n  n_mels: 64\n  hop_ms: 10\n")
    cfg = build_config(path, {"data": {"seed": 7, "split": None}})
    assert cfg.data.split == "stratified"  # from the file (flag not given)
    assert cfg.data.seed == 7  # the flag wins
    assert cfg.features.n_mels == 64 and isinstance(cfg.features.hop_ms, float)


def test_toml_and_json_round_trip(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[features]\nkind = "mfcc"\nn_mfcc = 13\n[run]\nseed = 3\n')
    cfg = build_config(toml, {})
    assert cfg.features.kind == "mfcc" and cfg.run.seed == 3
    dumped = tmp_path / "config.json"
    dumped.write_text(json.dumps(cfg.to_dict()))
    assert build_config(dumped, {}) == cfg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data:\n  splitt: speaker\n", r"unknown config key 'data.splitt'; valid keys in data: dataset, path, split"),
        ("foo: 1\n", r"unknown config key 'foo'; valid keys: run, data, features"),
        ("data:\n  synthetic:\n    n_clases: 8\n", r"unknown config key 'data.synthetic.n_clases'"),
        ("features:\n  n_mels: forty\n", r"field 'features.n_mels' expects int, got 'forty'"),
        ("features:\n  kind: cqt\n", r"features.kind must be one of logmel, mfcc, waveform"),
        ("data:\n  dataset: nosuch\n", r"unknown dataset 'nosuch'; known datasets: .*fsdd"),
        ("- a\n- b\n", r"must hold a mapping"),
        ("data: [unclosed\n", r"does not parse"),
        ("nas:\n  objectives: accuracy\n", r"config field 'nas.objectives' expects a list \(e.g. \['accuracy'\]\)"),
        ("nas:\n  devices: mydev\n", r"config field 'nas.devices' expects a list"),
        ("baseline:\n  models: tiny\n", r"config field 'baseline.models' expects a list"),
        ("nas:\n  objectives: 5\n", r"config field 'nas.objectives' expects a list"),
    ],
)
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        build_config(path, {})


def test_missing_or_unsupported_config_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        build_config(tmp_path / "none.yaml", {})
    ini = tmp_path / "c.ini"
    ini.write_text("[x]")
    with pytest.raises(UserError, match=r"expected \.yaml, \.yml, \.toml or \.json"):
        build_config(ini, {})


def test_partial_nested_section_keeps_the_section_default(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("nas:\n  proxy:\n    epochs: 2\n")
    cfg = build_config(path, {"nas": {"proxy": {"lr": 0.01}}})
    default = PipelineConfig().nas.proxy
    assert cfg.nas.proxy.epochs == 2 and cfg.nas.proxy.lr == 0.01
    assert cfg.nas.proxy.progress == default.progress is False  # the nas.proxy default, not TrainConfig's
    assert cfg.nas.proxy.warmup_epochs == default.warmup_epochs
