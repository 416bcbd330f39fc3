"""Checkpoint files: round trip with weights_only loading, atomic writes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from common.errors import UserError
from train.checkpoint import (
    FORMAT_VERSION,
    capture_rng,
    load_checkpoint,
    load_model_weights,
    restore_rng,
    save_checkpoint,
)

CPU = torch.device("cpu")


def make_state(spec: str = "lin4") -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    state = {
        "format_version": FORMAT_VERSION,
        "spec": spec,
        "epoch": 3,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best": {"epoch": 2, "val_macro_f1": 0.5, "val_accuracy": 0.6},
        "history": [{"epoch": 1, "val_macro_f1": 0.25}],
        "rng": capture_rng(np.random.default_rng(7), CPU),
        "config": {"train": {"epochs": 5, "grad_clip_norm": None}, "data": {"classes": ["a", "b", "c"]}},
    }
    return model, state


def test_round_trip_and_atomic_write(tmp_path):
    model, state = make_state()
    save_checkpoint(state, tmp_path / "best.pt", tmp_path / "last.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temp files left
    loaded = load_checkpoint(tmp_path / "last.pt", "lin4")
    assert loaded["epoch"] == 3 and loaded["history"] == state["history"] and loaded["config"] == state["config"]
    other = nn.Linear(4, 3)
    load_model_weights(other, tmp_path / "best.pt", "lin4")
    assert torch.equal(other.weight, model.weight)
    fresh = torch.optim.AdamW(other.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded["optimizer"])  # optimizer state survives weights_only loading


def test_rng_states_round_trip_through_a_file(tmp_path):
    rng = np.random.default_rng(11)
    torch.manual_seed(5)
    _, state = make_state()
    state["rng"] = capture_rng(rng, CPU)
    expected = (rng.random(3), torch.rand(3))
    save_checkpoint(state, tmp_path / "last.pt")
    restored = np.random.default_rng(0)
    restore_rng(restored, load_checkpoint(tmp_path / "last.pt")["rng"], CPU)
    assert np.array_equal(restored.random(3), expected[0])
    assert torch.equal(torch.rand(3), expected[1])


def test_spec_mismatch_names_both_specs(tmp_path):
    _, state = make_state("lin4")
    save_checkpoint(state, tmp_path / "last.pt")
    with pytest.raises(UserError, match=r"last\.pt belongs to architecture 'lin4', but 'c16k3' was expected"):
        load_checkpoint(tmp_path / "last.pt", "c16k3")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_file_is_a_user_error(tmp_path, damage):
    _, state = make_state()
    path = tmp_path / "last.pt"
    save_checkpoint(state, path)
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 10, "empty": b""}
    path.write_bytes(damaged[damage])
    with pytest.raises(UserError, match=r"last\.pt is corrupt or truncated"):
        load_checkpoint(path, "lin4")


def test_missing_foreign_and_future_files(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    _, state = make_state()
    save_checkpoint({**state, "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(UserError, match="format_version 99"):
        load_checkpoint(tmp_path / "future.pt")


def test_unsafe_pickle_is_refused(tmp_path):
    _, state = make_state()
    torch.save({**state, "extra": np.float64}, tmp_path / "unsafe.pt")  # not loadable with weights_only
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "unsafe.pt")


def test_weights_that_do_not_fit_the_model(tmp_path):
    _, state = make_state()
    save_checkpoint(state, tmp_path / "best.pt")
    with pytest.raises(UserError, match="does not fit the given model"):
        load_model_weights(nn.Linear(5, 3), tmp_path / "best.pt", "lin4")
