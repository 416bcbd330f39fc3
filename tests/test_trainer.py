"""Trainer tests on a small structured toy task built from the real Features/Splits/Normalization."""

from __future__ import annotations

import dataclasses
import itertools
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

import train.trainer as trainer_mod
from common.config_io import dataclass_from_dict
from common.errors import UserError
from train.checkpoint import load_checkpoint
from train.device import cuda_determinism, resolve_amp
from train.evaluate import evaluate_model
from train.feature_set import Features
from train.features import FeatureConfig
from train.normalization import compute_normalization
from train.splits import Splits
from train.train_config import RESUME_FREE_FIELDS, SpecAugmentConfig, TrainConfig
from train.trainer import select_train_rows, train_model, warmup_cosine

N_CLASSES = 4
N_BINS, N_FRAMES = 16, 24
TIMING_KEYS = ("train_s", "val_s")


def make_features(n_per_class: int = 60, signal: float = 0.8, seed: int = 0) -> Features:
    """Noise plus extra energy in a class-specific band of bins: learnable, not trivially so."""
    rng = np.random.default_rng(seed)
    n = n_per_class * N_CLASSES
    y = rng.permutation(np.repeat(np.arange(N_CLASSES), n_per_class)).astype(np.int64)
    x = rng.normal(size=(n, N_BINS, N_FRAMES)).astype(np.float32)
    band = N_BINS // N_CLASSES
    for c in range(N_CLASSES):
        x[y == c, c * band : (c + 1) * band, :] += signal
    order = rng.permutation(n)
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    splits = Splits(
        np.sort(order[:n_train]), np.sort(order[n_train : n_train + n_val]), np.sort(order[n_train + n_val :]), "toy"
    )
    return Features(
        x=x,
        y=y,
        classes=[f"class{c}" for c in range(N_CLASSES)],
        splits=splits,
        normalization=compute_normalization(x, splits.train),
        speakers=np.array([f"spk{i % 3}" for i in range(n)], dtype=object),
        paths=[f"clip{i}.wav" for i in range(n)],
        dataset="toy",
        config=FeatureConfig(),
        cache_key="toy",
        cache_hit=True,
    )


class TinyCNN(nn.Module):
    """(B, 1, 16, 24) -> (B, n_classes); keeps coarse frequency position, pools time away."""

    def __init__(self, n_classes: int = N_CLASSES, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 1)),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def features() -> Features:
    return make_features()


def fast_cfg(**overrides) -> TrainConfig:
    base = {"epochs": 4, "batch_size": 32, "lr": 1e-2, "progress": False, "seed": 0}
    return TrainConfig(**{**base, **overrides})


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in history]


def train_interrupted(features, cfg, out_dir, after_epoch: int, monkeypatch) -> None:
    """Train into ``out_dir`` and 'kill' the run right after epoch ``after_epoch``'s checkpoint."""
    real_save = trainer_mod.save_checkpoint

    def save_then_crash(state, *paths):
        real_save(state, *paths)
        if state["epoch"] == after_epoch and any(os.path.basename(p) == "last.pt" for p in paths):
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer_mod, "save_checkpoint", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            train_model(TinyCNN(), features, cfg, out_dir=out_dir, spec="tiny")


def test_learns_toy_task_above_chance(features):
    model = TinyCNN()
    result = train_model(model, features, fast_cfg(epochs=8), spec="tiny")
    assert result.epochs_run == 8 and len(result.history) == 8
    assert result.best_val_accuracy > 0.7  # chance is 0.25
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    test = evaluate_model(model, features, "test")
    assert test["split"] == "test" and test["accuracy"] > 0.6
    assert set(test["per_speaker"]) == {"spk0", "spk1", "spk2"}
    assert result.best_path is None and result.last_path is None


def test_same_seed_gives_identical_weights_and_other_seed_differs(features):
    runs = []
    for build_seed, seed in ((1, 0), (2, 0), (3, 1)):
        torch.manual_seed(build_seed)  # the caller's init must not matter: the trainer re-seeds it
        model = TinyCNN()
        result = train_model(model, features, fast_cfg(seed=seed))
        runs.append((state_of(model), strip_timing(result.history)))
    assert same_state(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert not same_state(runs[0][0], runs[2][0])


def test_streaming_matches_in_memory(features):
    a, b = TinyCNN(), TinyCNN()
    train_model(a, features, fast_cfg(epochs=2))
    train_model(b, features, fast_cfg(epochs=2, in_memory_max_mb=0))  # forces streaming from the array
    assert same_state(state_of(a), state_of(b))


def test_global_random_states_and_threads_untouched(features):
    random.seed(123)
    torch.manual_seed(123)
    model = TinyCNN()
    py_state, torch_state, threads = random.getstate(), torch.get_rng_state(), torch.get_num_threads()
    train_model(model, features, fast_cfg(epochs=1, num_threads=1))
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert torch.get_num_threads() == threads


def test_resume_after_interruption_is_bit_identical(features, tmp_path, monkeypatch):
    cfg = fast_cfg(epochs=5, spec_augment=SpecAugmentConfig(1, 3, 1, 4), mixup_alpha=0.2)
    straight = TinyCNN()
    full = train_model(straight, features, cfg, out_dir=tmp_path / "straight", spec="tiny")

    out = tmp_path / "interrupted"
    train_interrupted(features, cfg, out, after_epoch=2, monkeypatch=monkeypatch)
    assert load_checkpoint(out / "last.pt", "tiny")["epoch"] == 2

    resumed_model = TinyCNN()
    resumed = train_model(resumed_model, features, cfg, out_dir=out, spec="tiny", resume=True)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 5
    assert strip_timing(resumed.history) == strip_timing(full.history)
    assert resumed.best_epoch == full.best_epoch
    assert same_state(state_of(resumed_model), state_of(straight))  # best weights, returned in the model
    last_a = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    last_b = load_checkpoint(out / "last.pt")["model"]
    assert same_state(last_a, last_b)  # final weights


def test_memory_formats_train_the_same_model_and_return_the_usual_layout(features):
    trained = {}
    for memory_format in ("contiguous", "channels_last"):
        model = TinyCNN()
        result = train_model(model, features, fast_cfg(epochs=2, memory_format=memory_format))
        assert all(p.is_contiguous() for p in model.parameters())  # the caller gets NCHW weights back
        trained[memory_format] = (state_of(model), result)
    (a, result_a), (b, result_b) = trained.values()
    assert a.keys() == b.keys()
    # Only the order of floating-point sums differs. A conv bias followed by BatchNorm has a zero
    # gradient up to rounding, which AdamW's normalised step turns into drift (as does the running
    # mean that follows it), so it is left out; every weight agrees.
    for name in (n for n in a if n.endswith("weight")):
        torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-4, msg=name)
    assert result_a.history[0]["train_loss"] == pytest.approx(result_b.history[0]["train_loss"], rel=1e-4)
    assert result_a.best_val_accuracy == pytest.approx(result_b.best_val_accuracy, abs=0.02)


def test_resume_may_change_the_memory_format(features, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train_interrupted(features, fast_cfg(epochs=3, memory_format="channels_last"), out, after_epoch=1,
                      monkeypatch=monkeypatch)  # fmt: skip
    model = TinyCNN()
    resumed = train_model(model, features, fast_cfg(epochs=3, memory_format="contiguous"), out_dir=out, spec="tiny",
                          resume=True)  # fmt: skip
    assert resumed.resumed_from_epoch == 1 and resumed.epochs_run == 3
    assert "memory_format" in RESUME_FREE_FIELDS


def test_unknown_memory_format_is_refused():
    with pytest.raises(ValueError, match=r"train.memory_format must be one of channels_last, contiguous, got 'nhwc'"):
        TrainConfig(memory_format="nhwc")


def test_resume_keeps_the_best_weights_when_best_pt_is_lost(features, tmp_path, monkeypatch):
    """``last.pt`` carries the best epoch's weights: a crash between the best.pt and last.pt writes loses nothing."""
    cfg = fast_cfg(epochs=5, lr=3e-2)
    straight = TinyCNN()
    full = train_model(straight, features, cfg, out_dir=tmp_path / "straight", spec="tiny")
    assert full.best_epoch < cfg.epochs  # later epochs do not improve: only the saved best can restore it
    out = tmp_path / "interrupted"
    train_interrupted(features, cfg, out, after_epoch=full.best_epoch, monkeypatch=monkeypatch)
    (out / "best.pt").unlink()
    resumed_model = TinyCNN()
    resumed = train_model(resumed_model, features, cfg, out_dir=out, spec="tiny", resume=True)
    assert resumed.best_epoch == full.best_epoch
    assert same_state(state_of(resumed_model), state_of(straight))


def test_best_pt_holds_one_copy_and_old_checkpoints_are_refused_clearly(features, tmp_path, monkeypatch):
    cfg = fast_cfg(epochs=2)
    train_interrupted(features, cfg, tmp_path, after_epoch=1, monkeypatch=monkeypatch)
    assert "best_model" not in load_checkpoint(tmp_path / "best.pt") and "best_model" in load_checkpoint(
        tmp_path / "last.pt"
    )
    old = load_checkpoint(tmp_path / "last.pt")  # as the previous version wrote it
    del old["best_model"]
    old["config"]["data"]["cache_key"] = old["config"]["data"].pop("fingerprint")
    torch.save(old, tmp_path / "last.pt")
    with pytest.raises(UserError, match="written by an older version"):
        train_model(TinyCNN(), features, cfg, out_dir=tmp_path, spec="tiny", resume=True)


def test_resume_ignores_where_the_features_are_cached(features, tmp_path, monkeypatch):
    """The trainer compares the data's content fingerprint, not the cache key (paths, mtimes)."""
    cfg = fast_cfg(epochs=3)
    out = tmp_path / "run"
    train_interrupted(features, cfg, out, after_epoch=1, monkeypatch=monkeypatch)
    moved = dataclasses.replace(features, cache_key="elsewhere")
    assert train_model(TinyCNN(), moved, cfg, out_dir=out, spec="tiny", resume=True).resumed_from_epoch == 1
    relabelled = dataclasses.replace(features, y=np.roll(features.y, 1))
    with pytest.raises(UserError, match=r"different settings \(data\.fingerprint\)"):
        train_model(TinyCNN(), relabelled, cfg, out_dir=out, spec="tiny", resume=True)


def test_resume_of_finished_run_trains_nothing(features, tmp_path):
    cfg = fast_cfg(epochs=2)
    first = train_model(TinyCNN(), features, cfg, out_dir=tmp_path, spec="tiny")
    model = TinyCNN()
    again = train_model(model, features, cfg, out_dir=tmp_path, spec="tiny", resume=True)
    assert again.resumed_from_epoch == 2 and again.history == first.history
    best = load_checkpoint(tmp_path / "best.pt", "tiny")
    assert same_state(state_of(model), best["model"])


def test_best_pt_holds_best_val_epoch(features, tmp_path):
    model = TinyCNN()
    result = train_model(model, features, fast_cfg(epochs=6, lr=3e-2), out_dir=tmp_path, spec="tiny")
    scores = [row["val_macro_f1"] for row in result.history]
    assert result.best_epoch == int(np.argmax(scores)) + 1  # first epoch reaching the maximum
    best = load_checkpoint(result.best_path, "tiny")
    last = load_checkpoint(result.last_path, "tiny")
    assert best["epoch"] == result.best_epoch and last["epoch"] == 6
    assert best["best"]["val_macro_f1"] == max(scores)
    assert same_state(state_of(model), best["model"])
    assert best["config"]["train"]["epochs"] == 6 and best["config"]["data"]["classes"] == features.classes
    assert {"optimizer", "scheduler", "rng", "history"} <= best.keys()
    # the returned model reproduces the best epoch's validation score
    assert evaluate_model(model, features, "val")["macro_f1"] == pytest.approx(max(scores), abs=1e-12)


def test_early_stopping_stops_after_patience(features):
    model = nn.Sequential(nn.Flatten(), nn.Linear(N_BINS * N_FRAMES, N_CLASSES))  # no batch norm: fixed outputs
    result = train_model(model, features, fast_cfg(epochs=30, lr=1e-12, early_stopping_patience=2))
    assert result.stopped_early
    assert result.best_epoch == 1 and result.epochs_run == 3


def test_augmentation_paths_run_and_eval_is_unmasked(features, monkeypatch):
    calls = []
    real = trainer_mod.spec_augment

    def spy(x, cfg, rng):
        calls.append(torch.is_grad_enabled())
        return real(x, cfg, rng)

    monkeypatch.setattr(trainer_mod, "spec_augment", spy)
    cfg = fast_cfg(epochs=2, mixup_alpha=0.4, label_smoothing=0.1, spec_augment=SpecAugmentConfig(2, 4, 2, 6))
    model = TinyCNN()
    result = train_model(model, features, cfg)
    steps = len(features.splits.train) // cfg.batch_size
    assert len(calls) == 2 * steps and all(calls)  # training batches only, never validation
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert evaluate_model(model, features, "val")["accuracy"] == pytest.approx(result.best_val_accuracy)


def test_test_split_is_never_read(features):
    x = np.array(features.x)
    x[features.splits.test] = np.nan  # any read of a test row would poison training
    poisoned = dataclasses.replace(features, x=x)
    result = train_model(TinyCNN(), poisoned, fast_cfg(epochs=2))
    assert all(np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"]) for row in result.history)


def test_out_dir_none_writes_no_file(features, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("the proxy must not write files")

    monkeypatch.setattr(trainer_mod, "save_checkpoint", forbidden)
    train_model(TinyCNN(), features, fast_cfg(epochs=1))
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_other_spec_corrupt_file_and_changed_config(features, tmp_path):
    cfg = fast_cfg(epochs=1)
    train_model(TinyCNN(), features, cfg, out_dir=tmp_path, spec="tiny")
    with pytest.raises(UserError, match="belongs to architecture 'tiny', but 'other' was expected"):
        train_model(TinyCNN(), features, cfg, out_dir=tmp_path, spec="other", resume=True)
    with pytest.raises(UserError, match=r"different settings \(lr\)"):
        train_model(TinyCNN(), features, fast_cfg(epochs=1, lr=0.5), out_dir=tmp_path, spec="tiny", resume=True)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(UserError, match="corrupt or truncated"):
        train_model(TinyCNN(), features, cfg, out_dir=tmp_path, spec="tiny", resume=True)


def test_train_subset_is_stratified_and_sized(features):
    n_train = len(features.splits.train)
    half = select_train_rows(features, TrainConfig(train_subset=0.5))
    forty = select_train_rows(features, TrainConfig(train_subset=40))
    assert len(half) == round(0.5 * n_train) and len(forty) == 40
    assert set(forty) <= set(features.splits.train)
    assert len(np.unique(features.y[forty])) == N_CLASSES
    assert np.array_equal(forty, select_train_rows(features, TrainConfig(train_subset=40, seed=9)))  # subset_seed only
    result = train_model(TinyCNN(), features, fast_cfg(epochs=1, train_subset=40))
    assert result.n_train == 40


def test_warmup_cosine_schedule():
    factors = [warmup_cosine(step, warmup_steps=4, total_steps=12) for step in range(12)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and all(a > b for a, b in itertools.pairwise(factors[4:]))
    assert 0 < factors[-1] < 0.05


def test_cuda_request_without_gpu_is_a_user_error(features):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UserError, match="no CUDA device"):
        train_model(TinyCNN(), features, fast_cfg(device="cuda"))
    with pytest.raises(UserError, match="needs a CUDA device"):
        train_model(TinyCNN(), features, fast_cfg(device="cpu", amp="fp16"))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_path_runs_and_resumes(features, tmp_path, monkeypatch, dtype):
    """The autocast + GradScaler code of CUDA runs, exercised with CPU autocast (no GPU here)."""
    monkeypatch.setattr(trainer_mod, "resolve_amp", lambda mode, device: dtype)
    cfg = fast_cfg(epochs=3)
    straight = train_model(TinyCNN(), features, cfg, out_dir=tmp_path / "a", spec="tiny")
    assert straight.amp == {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    assert all(np.isfinite(row["train_loss"]) for row in straight.history)
    train_interrupted(features, cfg, tmp_path / "b", after_epoch=1, monkeypatch=monkeypatch)
    scaler = load_checkpoint(tmp_path / "b" / "last.pt")["scaler"]
    assert bool(scaler) == (dtype == torch.float16)  # a GradScaler only for fp16
    resumed = train_model(TinyCNN(), features, cfg, out_dir=tmp_path / "b", spec="tiny", resume=True)
    assert resumed.resumed_from_epoch == 1
    assert strip_timing(resumed.history) == strip_timing(straight.history)


class NaNModel(TinyCNN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * float("nan")


def test_divergence_stops_training(features):
    result = train_model(NaNModel(), features, fast_cfg(epochs=5))
    assert result.diverged and result.epochs_run == 1 and not result.stopped_early


def _determinism_state() -> tuple:
    return (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )


@pytest.fixture
def no_cublas_env(monkeypatch):
    """CUBLAS_WORKSPACE_CONFIG unset during the test, and restored (or unset again) after it."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "placeholder")  # records the original value for undo
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")


def test_deterministic_flag_round_trips_and_changes_nothing_on_cpu(features, tmp_path, no_cublas_env, monkeypatch):
    assert TrainConfig().deterministic is True and "deterministic" in RESUME_FREE_FIELDS
    off_cfg = fast_cfg(epochs=2, device="cpu", deterministic=False)
    assert dataclass_from_dict(TrainConfig, dataclasses.asdict(off_cfg)) == off_cfg
    calls = []
    real = trainer_mod.cuda_determinism
    monkeypatch.setattr(trainer_mod, "cuda_determinism", lambda on, dev: calls.append((on, dev.type)) or real(on, dev))
    before = _determinism_state()
    on_model, off_model = TinyCNN(), TinyCNN()
    on = train_model(on_model, features, fast_cfg(epochs=2, device="cpu"), out_dir=tmp_path, spec="tiny")
    off = train_model(off_model, features, off_cfg)
    assert calls == [(True, "cpu"), (False, "cpu")]
    assert _determinism_state() == before and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert same_state(state_of(on_model), state_of(off_model))
    assert strip_timing(on.history) == strip_timing(off.history)
    assert load_checkpoint(tmp_path / "last.pt")["config"]["train"]["deterministic"] is True
    again = train_model(TinyCNN(), features, off_cfg, out_dir=tmp_path, spec="tiny", resume=True)  # not refused
    assert again.resumed_from_epoch == 2 and again.best_epoch == on.best_epoch


def test_cuda_determinism_sets_and_restores_the_global_switches(no_cublas_env, monkeypatch):
    """The CUDA branch, run without a GPU: the switches it sets need none."""
    before = _determinism_state()
    with cuda_determinism(True, torch.device("cuda")):
        assert _determinism_state() == (True, False, True, True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert _determinism_state() == before
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's own setting is kept
    with pytest.raises(RuntimeError, match="boom"), cuda_determinism(True, torch.device("cuda", 0)):
        raise RuntimeError("boom")
    assert _determinism_state() == before and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    for enabled, device in ((False, "cuda"), (True, "cpu")):
        with cuda_determinism(enabled, torch.device(device)):
            assert _determinism_state() == before and "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_best_val_accuracy_is_the_accuracy_of_the_best_macro_f1_epoch(features):
    result = train_model(TinyCNN(), features, fast_cfg(epochs=4))
    best = result.history[result.best_epoch - 1]
    assert best["val_macro_f1"] == max(row["val_macro_f1"] for row in result.history) == result.best_val_macro_f1
    assert result.best_val_accuracy == best["val_accuracy"]


@pytest.mark.parametrize(
    ("capability", "auto", "bf16_ok"),
    [((7, 5), torch.float16, False), ((7, 0), torch.float16, False), ((8, 0), torch.bfloat16, True),
     ((9, 0), torch.bfloat16, True)],
)  # fmt: skip
def test_amp_auto_uses_bf16_only_where_it_is_native(monkeypatch, capability, auto, bf16_ok):
    """No GPU here: the capability query is the one thing replaced (T4 = 7.5, V100 = 7.0, A100 = 8.0)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"gpu sm{capability[0]}{capability[1]}")
    cuda = torch.device("cuda", 0)
    assert resolve_amp("auto", cuda) == auto
    assert resolve_amp("fp16", cuda) == torch.float16
    if bf16_ok:
        assert resolve_amp("bf16", cuda) == torch.bfloat16
    else:
        with pytest.raises(UserError, match="amp=bf16 is not supported"):
            resolve_amp("bf16", cuda)
