"""Knowledge distillation: the loss by hand, the teacher's frozen use in the trainer, caching, resume, checks."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_trainer import TinyCNN, fast_cfg, make_features, same_state, state_of, strip_timing
from torch import nn

import train.trainer as trainer_mod
from common.errors import UserError
from train.checkpoint import load_checkpoint
from train.distill import DistillConfig, Teacher, distillation_loss, soft_loss, teacher_identity
from train.train_config import SpecAugmentConfig
from train.trainer import train_model

AUGMENTED = {"spec_augment": SpecAugmentConfig(1, 3, 1, 4), "mixup_alpha": 0.3}

# a hand-made batch: 2 examples, 3 classes
STUDENT = [[1.0, 2.0, 0.5], [0.0, -1.0, 1.5]]
TEACHER = [[2.0, 0.0, 1.0], [0.5, 0.5, -0.5]]
TARGETS = [1, 2]


@pytest.fixture(scope="module")
def features():
    return make_features()


@pytest.fixture(scope="module")
def teacher_ckpt(features, tmp_path_factory):
    """A teacher trained well on the toy task, as its best.pt."""
    out = tmp_path_factory.mktemp("teacher")
    result = train_model(TinyCNN(), features, fast_cfg(epochs=8, seed=7), out_dir=out, spec="teacher")
    assert result.best_val_accuracy > 0.8
    return out / "best.pt"


def load_teacher(path, **distill) -> Teacher:
    return Teacher.from_checkpoint(TinyCNN(), path, DistillConfig(**distill), spec="teacher")


def train_interrupted(features, cfg, out_dir, after_epoch, monkeypatch, teacher) -> None:
    """Train into ``out_dir`` and 'kill' the run right after epoch ``after_epoch``'s last.pt (as test_trainer)."""
    real_save = trainer_mod.save_checkpoint

    def save_then_crash(state, *paths):
        real_save(state, *paths)
        if state["epoch"] == after_epoch and any(os.path.basename(p) == "last.pt" for p in paths):
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer_mod, "save_checkpoint", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            train_model(TinyCNN(), features, cfg, out_dir=out_dir, spec="tiny", teacher=teacher)


def record_forwards(module: nn.Module, calls: list) -> torch.utils.hooks.RemovableHandle:
    """Append (training flag, input) of every forward of ``module`` to ``calls``."""
    return module.register_forward_hook(lambda mod, args, out: calls.append((mod.training, args[0].detach().clone())))


# -- the loss ---------------------------------------------------------------------------------


def _log_softmax_by_hand(row: list[float], temperature: float) -> list[float]:
    scaled = [v / temperature for v in row]
    log_z = math.log(sum(math.exp(v) for v in scaled))
    return [v - log_z for v in scaled]


def test_loss_equals_the_formula_by_hand():
    temperature, alpha = 2.0, 0.3
    ce = sum(-_log_softmax_by_hand(s, 1.0)[y] for s, y in zip(STUDENT, TARGETS, strict=True)) / 2
    kl = 0.0
    for s, t in zip(STUDENT, TEACHER, strict=True):
        log_p_s, log_p_t = _log_softmax_by_hand(s, temperature), _log_softmax_by_hand(t, temperature)
        kl += sum(math.exp(lt) * (lt - ls) for ls, lt in zip(log_p_s, log_p_t, strict=True))
    expected = alpha * ce + (1 - alpha) * temperature**2 * (kl / 2)  # KL averaged over the 2 examples
    loss = distillation_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(TARGETS), temperature, alpha)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.74366, abs=1e-5)  # CE 0.36537, KL 0.22645: 0.3 * CE + 0.7 * 4 * KL


def test_alpha_one_is_plain_cross_entropy_and_alpha_zero_the_scaled_kl():
    s, t, y, y_b = torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(TARGETS), torch.tensor([0, 0])
    hard = distillation_loss(s, t, y, 4.0, 1.0, label_smoothing=0.1)
    assert torch.equal(hard, F.cross_entropy(s, y, label_smoothing=0.1))
    mixed = distillation_loss(s, t, y, 4.0, 1.0, targets_b=y_b, lam=0.25)
    assert torch.equal(mixed, 0.25 * F.cross_entropy(s, y) + 0.75 * F.cross_entropy(s, y_b))  # the trainer's mix
    assert torch.equal(distillation_loss(s, t, y, 4.0, 1.0, targets_b=y_b, lam=1.0), F.cross_entropy(s, y))
    for temperature in (1.0, 3.0):
        kl = F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1), log_target=True,
                      reduction="batchmean")  # fmt: skip
        soft = distillation_loss(s, t, y, temperature, 0.0, label_smoothing=0.1, targets_b=y_b, lam=0.5)
        assert torch.equal(soft, temperature**2 * kl)  # the hard labels play no part at alpha 0
    ratio = soft_loss(s, t, 3.0) / F.kl_div(F.log_softmax(s / 3, 1), F.log_softmax(t / 3, 1), log_target=True,
                                             reduction="batchmean")  # fmt: skip
    assert float(ratio) == pytest.approx(9.0)  # the T^2 factor
    assert float(distillation_loss(t, t, y, 4.0, 0.0)) == pytest.approx(0.0, abs=1e-7)  # student = teacher


def test_loss_is_float32_under_autocast_and_has_gradients():
    s = torch.tensor(STUDENT, dtype=torch.bfloat16, requires_grad=True)
    t, y = torch.tensor(TEACHER, dtype=torch.bfloat16), torch.tensor(TARGETS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = distillation_loss(s, t, y, 2.0, 0.5)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, distillation_loss(s.detach().float(), t.float(), y, 2.0, 0.5))
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad.float()).all()


def test_loss_refuses_mismatched_logits():
    with pytest.raises(ValueError, match=r"student logits \(2, 3\) and teacher logits \(2, 2\) differ"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 2), torch.tensor(TARGETS), 4.0, 0.5)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 0.0, "distill.temperature must be > 0"),
        ("temperature", -1.0, "distill.temperature must be > 0"),
        ("temperature", math.nan, "distill.temperature must be > 0"),
        ("temperature", math.inf, "distill.temperature must be > 0 and finite, got inf"),
        ("temperature", "4", "distill.temperature"),
        ("alpha", -0.1, r"distill.alpha must be in \[0, 1\], got -0.1"),
        ("alpha", 1.5, r"distill.alpha must be in \[0, 1\]"),
        ("alpha", math.nan, r"distill.alpha must be in \[0, 1\], got nan"),
        ("alpha", math.inf, r"distill.alpha must be in \[0, 1\]"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message) as info:
        DistillConfig(**{field: value})
    assert "\n" not in str(info.value)


def test_config_defaults_and_bounds_are_valid():
    assert DistillConfig() == DistillConfig(temperature=4.0, alpha=0.5)
    DistillConfig(temperature=1, alpha=0)
    DistillConfig(temperature=0.5, alpha=1.0)


# -- the teacher ------------------------------------------------------------------------------


def test_teacher_from_checkpoint_is_frozen_and_named_by_its_weights(features, teacher_ckpt):
    teacher = load_teacher(teacher_ckpt)
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    assert teacher.classes == features.classes and teacher.input_shape == features.input_shape
    assert teacher.identity.startswith("teacher@") and teacher.identity == load_teacher(teacher_ckpt).identity
    assert teacher.identity == teacher_identity("teacher", teacher.model)
    assert teacher_identity("teacher", TinyCNN()) != teacher.identity  # other weights, other name
    with pytest.raises(UserError, match="belongs to architecture 'teacher'"):
        Teacher.from_checkpoint(TinyCNN(), teacher_ckpt, spec="other")
    with pytest.raises(ValueError, match="identity"):
        Teacher(TinyCNN(), DistillConfig(), "", features.classes, features.input_shape)


def test_teacher_of_other_classes_or_input_shape_is_refused(features, teacher_ckpt):
    teacher = load_teacher(teacher_ckpt)
    other_classes = dataclasses.replace(teacher, classes=list(reversed(features.classes)))
    with pytest.raises(UserError, match=r"predicts classes .*'class3'.* but the student's features have") as info:
        train_model(TinyCNN(), features, fast_cfg(epochs=1), teacher=other_classes)
    message = str(info.value)
    assert "\n" not in message and "class 0 is 'class3' for the teacher, 'class0' for the student" in message
    fewer = dataclasses.replace(teacher, classes=features.classes[:3])
    with pytest.raises(UserError, match="3 classes for the teacher, 4 for the student"):
        fewer.check_compatible(features)
    other_shape = dataclasses.replace(teacher, input_shape=(1, 40, 24))
    with pytest.raises(UserError, match=r"takes inputs of shape \(1, 40, 24\), .* have shape \(1, 16, 24\)"):
        train_model(TinyCNN(), features, fast_cfg(epochs=1), teacher=other_shape)
    student = TinyCNN()
    with pytest.raises(ValueError, match="another module than the student"):
        train_model(student, features, fast_cfg(epochs=1), teacher=dataclasses.replace(teacher, model=student))


# -- training with a teacher ------------------------------------------------------------------


def test_teacher_is_never_trained_nor_changed(features, teacher_ckpt):
    teacher = load_teacher(teacher_ckpt)
    before = state_of(teacher.model)
    teacher.model.train()  # even handed over in train mode, the trainer uses it in eval mode
    calls: list = []
    handle = record_forwards(teacher.model, calls)
    try:
        result = train_model(TinyCNN(), features, fast_cfg(epochs=2, **AUGMENTED), teacher=teacher)
    finally:
        handle.remove()
    assert calls and not any(training for training, _ in calls)
    assert same_state(state_of(teacher.model), before)  # BatchNorm statistics included
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    assert result.distilled_from == teacher.identity


@pytest.mark.parametrize("in_memory_max_mb", [1024, 0])  # in memory, streamed
def test_cached_teacher_logits_give_the_per_batch_result(features, teacher_ckpt, monkeypatch, in_memory_max_mb):
    cfg = fast_cfg(epochs=3, in_memory_max_mb=in_memory_max_mb)
    runs = []
    for cache in (True, False):
        monkeypatch.setattr(trainer_mod, "_CACHE_TEACHER_LOGITS", cache)
        teacher, calls = load_teacher(teacher_ckpt), []
        handle = record_forwards(teacher.model, calls)
        model = TinyCNN()
        result = train_model(model, features, cfg, teacher=teacher)
        handle.remove()
        runs.append((state_of(model), strip_timing(result.history), len(calls)))
    n_train, steps = len(features.splits.train), len(features.splits.train) // cfg.batch_size
    assert runs[0][2] == math.ceil(n_train / cfg.batch_size)  # once per training row, before the first epoch
    assert runs[1][2] == cfg.epochs * steps  # once per step
    assert same_state(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_distillation_runs_and_caches_alike(features, teacher_ckpt, monkeypatch, dtype):
    """The autocast (+ GradScaler for fp16) code of CUDA runs, exercised with CPU autocast (no GPU here)."""
    monkeypatch.setattr(trainer_mod, "resolve_amp", lambda mode, device: dtype)
    cfg = fast_cfg(epochs=2)
    runs = []
    for cache in (True, False):
        monkeypatch.setattr(trainer_mod, "_CACHE_TEACHER_LOGITS", cache)
        model = TinyCNN()
        result = train_model(model, features, cfg, teacher=load_teacher(teacher_ckpt))
        assert all(np.isfinite(row["train_loss"]) for row in result.history)
        runs.append((state_of(model), strip_timing(result.history)))
    assert same_state(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def test_teacher_sees_exactly_the_augmented_and_mixed_inputs_of_the_student(features, teacher_ckpt):
    teacher, student = load_teacher(teacher_ckpt), TinyCNN()
    teacher_calls: list = []
    student_calls: list = []
    handles = [record_forwards(teacher.model, teacher_calls), record_forwards(student, student_calls)]
    try:
        train_model(student, features, fast_cfg(epochs=1, **AUGMENTED), teacher=teacher)
    finally:
        for handle in handles:
            handle.remove()
    training_inputs = [x for training, x in student_calls if training]  # not the validation passes
    assert len(training_inputs) == len(teacher_calls) == len(features.splits.train) // 32
    assert all(torch.equal(a, b) for a, (_, b) in zip(training_inputs, teacher_calls, strict=True))
    assert any(not torch.equal(x, torch.round(x)) for x in training_inputs)  # non-trivial (mixed) inputs


def test_distillation_changes_training_and_alpha_one_does_not(features, teacher_ckpt):
    cfg = fast_cfg(epochs=2)
    plain, hard_only, distilled = TinyCNN(), TinyCNN(), TinyCNN()
    plain_result = train_model(plain, features, cfg)
    assert plain_result.distilled_from is None
    train_model(hard_only, features, cfg, teacher=load_teacher(teacher_ckpt, alpha=1.0))
    train_model(distilled, features, cfg, teacher=load_teacher(teacher_ckpt, alpha=0.5))
    assert same_state(state_of(plain), state_of(hard_only))  # the teacher's use leaves every random stream alone
    assert not same_state(state_of(plain), state_of(distilled))


class ShiftedClasses(nn.Module):
    """A teacher that names every class one further: its logits rolled by one class."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(self.model(x), shifts=1, dims=1)


def test_student_learns_from_the_teacher_alone(features, teacher_ckpt):
    """alpha=0: no hard label is seen, the teacher's soft labels alone teach the task (or mis-teach it)."""
    good = load_teacher(teacher_ckpt, alpha=0.0)
    result = train_model(TinyCNN(), features, fast_cfg(epochs=6), teacher=good)
    assert result.best_val_accuracy > 0.7  # chance is 0.25
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    misleading = dataclasses.replace(good, model=ShiftedClasses(good.model), identity="shifted")
    result = train_model(TinyCNN(), features, fast_cfg(epochs=6), teacher=misleading)
    final = [row["val_accuracy"] for row in result.history]
    assert final[-1] < 0.1, final  # it learnt the teacher's wrong names, not the labels


# -- checkpoints and resume -------------------------------------------------------------------


@pytest.mark.parametrize("augment", [{}, AUGMENTED], ids=["cached", "per-batch"])
def test_resumed_distilled_run_is_bit_identical(features, teacher_ckpt, tmp_path, monkeypatch, augment):
    cfg = fast_cfg(epochs=4, **augment)
    straight = TinyCNN()
    full = train_model(straight, features, cfg, out_dir=tmp_path / "a", spec="tiny", teacher=load_teacher(teacher_ckpt))
    out = tmp_path / "b"
    train_interrupted(features, cfg, out, 2, monkeypatch, load_teacher(teacher_ckpt))
    resumed_model, teacher = TinyCNN(), load_teacher(teacher_ckpt)
    resumed = train_model(resumed_model, features, cfg, out_dir=out, spec="tiny", resume=True, teacher=teacher)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 4
    assert strip_timing(resumed.history) == strip_timing(full.history)
    assert same_state(state_of(resumed_model), state_of(straight))
    last_a, last_b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert same_state(last_a["model"], last_b["model"])
    assert last_b["config"]["distill"] == {"teacher": full.distilled_from, "temperature": 4.0, "alpha": 0.5}
    assert resumed.distilled_from == full.distilled_from == load_teacher(teacher_ckpt).identity


def test_resume_with_another_teacher_or_settings_is_refused(features, teacher_ckpt, tmp_path):
    cfg = fast_cfg(epochs=1)
    distilled, plain = tmp_path / "distilled", tmp_path / "plain"
    train_model(TinyCNN(), features, cfg, out_dir=distilled, spec="tiny", teacher=load_teacher(teacher_ckpt))
    train_model(TinyCNN(), features, cfg, out_dir=plain, spec="tiny")
    renamed = dataclasses.replace(load_teacher(teacher_ckpt), identity="teacher@0000000000000000")
    hotter = load_teacher(teacher_ckpt, temperature=2.0)
    cases = [
        (distilled, renamed, r"distill\.teacher"),
        (distilled, hotter, r"distill\.temperature"),
        (distilled, load_teacher(teacher_ckpt, temperature=2.0, alpha=0.9), r"distill\.alpha, distill\.temperature"),
        (distilled, None, r"distill\.teacher"),  # a distilled run resumed without its teacher
        (plain, load_teacher(teacher_ckpt), r"distill\.teacher"),  # a plain run resumed with one
    ]
    for out, teacher, fields in cases:
        with pytest.raises(UserError, match=rf"cannot resume from .*different settings \({fields}\)"):
            train_model(TinyCNN(), features, cfg, out_dir=out, spec="tiny", resume=True, teacher=teacher)
    again = train_model(TinyCNN(), features, cfg, out_dir=distilled, spec="tiny", resume=True,
                        teacher=load_teacher(teacher_ckpt))  # fmt: skip
    assert again.resumed_from_epoch == 1  # the same teacher and settings are accepted
