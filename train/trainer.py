"""Training of one classifier on cached features: the NAS accuracy proxy and full training alike.

AdamW with a per-step linear warm-up then cosine schedule, label smoothing, gradient clipping,
optional SpecAugment and mixup, optional knowledge distillation from a frozen teacher
(:mod:`train.distill`), early stopping on validation macro-F1, and resumable checkpoints. Only
the train and val splits are read; the test split is left to the caller's final evaluation
(:func:`train.evaluate.evaluate_model`).

Determinism: all randomness comes from ``cfg.seed`` (a numpy generator for shuffling and
augmentation, torch's generators for initialisation and dropout, forked so the caller's torch
random state is untouched; Python's ``random`` is never used). On the CPU, a fixed seed and
``num_threads`` give bit-identical weights, also across a stop and ``resume``. On CUDA,
``cfg.deterministic`` (the default) selects deterministic cuDNN/cuBLAS kernels while training, see
:func:`train.device.cuda_determinism` for what that does and does not guarantee.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from common.errors import UserError
from common.progress import progress as progress_bar
from train.augment import mixup, spec_augment
from train.checkpoint import FORMAT_VERSION, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from train.device import autocast, cuda_determinism, resolve_amp, resolve_device
from train.distill import Teacher, distillation_loss
from train.evaluate import predict_logits, split_metrics
from train.feature_set import Features
from train.loader import SplitData
from train.train_config import RESUME_FREE_FIELDS, TrainConfig


@dataclass
class TrainResult:
    """What a training run achieved.

    The model is selected on validation macro-F1: ``best_epoch`` is the epoch with the highest
    ``val_macro_f1``, and both ``best_val_*`` scores are that epoch's.

    Attributes:
        best_val_macro_f1: The highest validation macro-F1 of any epoch (-inf if no epoch ran).
        best_val_accuracy: Validation accuracy *at* ``best_epoch``, the best-macro-F1 epoch; not the
            highest accuracy of any epoch (another epoch may have had a higher accuracy).
        best_epoch: 1-based epoch of the best validation macro-F1, whose weights the model holds on return.
        history: One row per completed epoch: ``epoch``, ``lr`` (of the epoch's last step),
            ``train_loss`` (the distillation loss when distilling), ``train_accuracy`` (on the
            augmented batches), ``train_s``, ``val_loss`` (plain cross-entropy), ``val_accuracy``,
            ``val_macro_f1`` and ``val_s``.
        distilled_from: The :class:`train.distill.Teacher` identity, or None without a teacher.
    """

    best_val_macro_f1: float
    best_val_accuracy: float  # accuracy at best_epoch (the best-macro-F1 epoch), not the best accuracy
    best_epoch: int  # 1-based epoch of the best validation macro-F1 (the weights the model holds on return)
    epochs_run: int  # epochs completed, including those before a resume
    stopped_early: bool
    diverged: bool  # the training loss became NaN/inf and training stopped
    history: list[dict[str, float]]
    wall_s: float  # wall time of this call (set-up, training, validation, checkpoints)
    n_train: int  # training examples drawn from per epoch (after train_subset)
    device: str
    amp: str  # off | fp16 | bf16
    resumed_from_epoch: int  # epochs already done in last.pt when resuming (0: fresh start)
    best_path: str | None  # best.pt, or None when nothing was written
    last_path: str | None
    distilled_from: str | None = None  # the teacher's identity, or None when trained without a teacher

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return dataclasses.asdict(self)


def train_model(
    model: nn.Module,
    features: Features,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    spec: str = "",
    resume: bool = False,
    teacher: Teacher | None = None,
) -> TrainResult:
    """Train ``model`` on the train split, select on the val split, and return the best epoch's scores.

    Args:
        model: A freshly built classifier taking (batch, 1, n_bins, n_frames); modified in place.
            On return it is in eval mode on the training device and holds the weights of the
            epoch with the best validation macro-F1.
        features: The cached features (train and val splits are used, test never).
        cfg: Training settings.
        out_dir: Folder for ``best.pt`` and ``last.pt``; None (the NAS proxy) writes no file at all.
        spec: The model's architecture string, stored in and checked against checkpoints.
        resume: Continue from ``out_dir/last.pt`` when it exists (a finished run returns at once).
        teacher: Distil from this frozen teacher (None: plain training). It is moved to the
            training device and kept in eval mode. Without augmentation its logits are computed
            once for all training rows; with SpecAugment or mixup, per batch on the very inputs
            the student sees. Its identity and settings are stored in the checkpoints.

    Returns:
        The best validation macro-F1 and accuracy, their epoch, the per-epoch history, timings
        and checkpoint paths.

    Raises:
        UserError: A checkpoint of another spec, config or teacher, a corrupt checkpoint, an
            unavailable device, or a teacher of other classes or input shape than ``features``.

    Example:
        >>> result = train_model(build(spec, features.n_classes, features.input_shape), features,
        ...                      TrainConfig(epochs=5, progress=False), spec=str(spec))
        >>> result.best_val_macro_f1
    """
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir (the folder holding last.pt)")
    start_s = time.perf_counter()
    device = resolve_device(cfg.device)  # checks CUDA is there without using it (no cuBLAS handle yet)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    try:
        with cuda_determinism(cfg.deterministic, device):  # first: before this call touches the GPU
            fork_devices = (
                [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
            )
            with torch.random.fork_rng(devices=fork_devices):
                folder = Path(out_dir) if out_dir is not None else None
                run = _Run(model, features, cfg, device, folder, spec, teacher)
                if resume:
                    run.resume()
                run.fit()
    finally:
        torch.set_num_threads(threads_before)
    return run.result(time.perf_counter() - start_s)


def reset_parameters(model: nn.Module) -> None:
    """Re-initialise every submodule that has ``reset_parameters`` (in module order, from torch's RNG)."""
    for name, module in model.named_modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        elif any(True for _ in module.parameters(recurse=False)):
            warnings.warn(
                f"module '{name}' ({type(module).__name__}) owns parameters but has no reset_parameters(); "
                "its initial weights are not re-seeded, so training may not be reproducible",
                stacklevel=3,
            )


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor at ``step`` (0-based): linear warm-up to 1, then cosine decay towards 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def select_train_rows(features: Features, cfg: TrainConfig) -> np.ndarray:
    """The training rows used: all of the train split, or a label-stratified ``train_subset`` draw."""
    rows = features.splits.train
    k = cfg.subset_size(len(rows))
    if k >= len(rows):
        return rows
    labels = features.y[rows]
    try:
        _, taken = train_test_split(rows, test_size=k, random_state=cfg.subset_seed, stratify=labels)
    except ValueError:  # too few examples per class, or too few left over, to stratify
        _, taken = train_test_split(rows, test_size=k, random_state=cfg.subset_seed)
    return np.sort(taken)


class _Run:
    """The state of one training run, its epoch loop and its checkpoints."""

    def __init__(
        self,
        model: nn.Module,
        features: Features,
        cfg: TrainConfig,
        device: torch.device,
        out_dir: Path | None,
        spec: str,
        teacher: Teacher | None = None,
    ) -> None:
        self.cfg, self.device, self.out_dir, self.spec = cfg, device, out_dir, spec
        self.amp_dtype = resolve_amp(cfg.amp, device)
        if cfg.spec_augment.enabled and len(features.input_shape) != 3:
            raise UserError(
                f"train.spec_augment masks spectrograms, but the features are {features.config.kind} inputs of "
                f"shape {features.input_shape}; turn spec_augment off"
            )
        self.teacher = _prepare_teacher(teacher, model, features, device)
        augmented = cfg.spec_augment.enabled or cfg.mixup_alpha > 0 or cfg.wave_augment.enabled
        self.cache_teacher_logits = teacher is not None and not augmented and _CACHE_TEACHER_LOGITS
        self.teacher_logits: torch.Tensor | None = None  # float32 (n_train, n_classes) on the device, when cached
        _seed_torch(cfg.seed, device)
        if cfg.reinit:  # before moving, so a model built on the CPU starts equal on every device
            reset_parameters(model)
        self.model = model.to(device)
        if cfg.memory_format == "channels_last":  # converts 4-D weights; 1-D convs and GRUs are left as they are
            # Inputs have one channel, so their NCHW and NHWC layouts are the same memory: only
            # the weights (and so every activation after the stem) change layout.
            self.model = self.model.to(memory_format=torch.channels_last)
        train_rows = select_train_rows(features, cfg)
        self.copies = None
        if cfg.wave_augment.enabled:
            from train.augment_cache import copies_for  # made by the features stage; read here
            from train.loader import AugmentedSplitData

            self.copies = copies_for(features, cfg.wave_augment)
            self.train_data = AugmentedSplitData(features, train_rows, self.copies, device, cfg.in_memory_max_mb)
        else:
            self.train_data = SplitData(features, train_rows, device, cfg.in_memory_max_mb)
        self.val_data = SplitData(features, features.splits.val, device, cfg.in_memory_max_mb)
        self.steps_per_epoch = max(1, len(self.train_data) // cfg.batch_size)
        total_steps = cfg.epochs * self.steps_per_epoch
        warmup_steps = min(total_steps, round(cfg.warmup_epochs * self.steps_per_epoch))
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, cfg.weight_decay), lr=cfg.lr)
        schedule = partial(warmup_cosine, warmup_steps=warmup_steps, total_steps=total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.rng = np.random.default_rng(cfg.seed)
        self.data_info = {
            "fingerprint": features.fingerprint,  # labels, splits, normalisation, settings; not paths
            "classes": list(features.classes),
            "input_shape": list(features.input_shape),
            "n_train": len(self.train_data),
        }
        if self.copies is not None:
            self.data_info["augmented_copies"] = self.copies.key
        self.distill_info = None if teacher is None else teacher.checkpoint_info()
        self.epoch = 0
        self.best: dict[str, float] = {"epoch": 0, "val_macro_f1": -math.inf, "val_accuracy": 0.0}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []
        self.stopped_early = self.diverged = False
        self.resumed_from = 0
        self.last_lr = 0.0  # learning rate of the latest step

    # -- the loop ---------------------------------------------------------------------------

    def fit(self) -> None:
        """Run the remaining epochs, then load the best epoch's weights into the model."""
        total = self.cfg.epochs * self.steps_per_epoch
        desc = self.spec or "train"
        if self.cache_teacher_logits and not self.finished:
            self.teacher_logits = self._predict_teacher()
        with progress_bar(
            total=total,
            initial=self.epoch * self.steps_per_epoch,
            desc=desc,
            disable=not self.cfg.progress,
            unit="step",
            leave=False,
        ) as bar:
            while not self.finished:
                row = self._train_epoch(bar)
                row.update(self._validate())
                self._end_epoch(row)
                bar.set_postfix(
                    loss=f"{row['train_loss']:.3f}",
                    acc=f"{row['train_accuracy']:.3f}",
                    val_f1=f"{row['val_macro_f1']:.3f}",
                    refresh=False,
                )
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.to(memory_format=torch.contiguous_format)  # the caller gets the usual layout back
        self.model.eval()

    @property
    def finished(self) -> bool:
        """Whether no epoch is left to run."""
        return self.epoch >= self.cfg.epochs or self.stopped_early or self.diverged

    def _train_epoch(self, bar: Any) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        start_s = time.perf_counter()
        order = self.rng.permutation(len(self.train_data))
        order = order[: self.steps_per_epoch * cfg.batch_size]  # drop the last incomplete batch
        if self.copies is not None:  # each clip clean or one of its copies, drawn per epoch
            order = order + len(self.train_data) * self.rng.integers(0, self.copies.copies + 1, size=len(order))
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        positions = None if self.teacher_logits is None else torch.from_numpy(order).to(self.device)
        for i, (x, y) in enumerate(self.train_data.batches(cfg.batch_size, order)):
            cached = None
            if positions is not None:  # batch i holds the rows at order[i * batch_size : (i + 1) * batch_size]
                cached = self.teacher_logits[positions[i * cfg.batch_size : (i + 1) * cfg.batch_size]]
            logits, loss = self._step(spec_augment(x, cfg.spec_augment, self.rng), y, cached)
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(dim=1) == y).sum()
            bar.update(1)
        seen = len(order)
        return {
            "epoch": self.epoch + 1,
            "lr": self.last_lr,
            "train_loss": float(loss_sum) / seen,
            "train_accuracy": float(correct) / seen,
            "train_s": time.perf_counter() - start_s,
        }

    def _step(
        self, x: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step; returns the logits and the (mixed, distilled) loss.

        ``teacher_logits`` are the cached ones of this batch; when distilling without a cache they
        are computed here, on the (augmented and mixed) inputs the student sees.
        """
        cfg = self.cfg
        y_other, lam = y, 1.0
        if cfg.mixup_alpha > 0:
            x, y_other, lam = mixup(x, y, cfg.mixup_alpha, self.rng)
        if self.teacher is not None and teacher_logits is None:
            teacher_logits = self._teacher_forward(x)
        with autocast(self.device, self.amp_dtype):
            logits = self.model(x)
            loss = self._loss(logits, y, y_other, lam, teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip_norm)
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return logits, loss

    def _loss(
        self, logits: torch.Tensor, y: torch.Tensor, y_other: torch.Tensor, lam: float, teacher: torch.Tensor | None
    ) -> torch.Tensor:
        """Cross-entropy (mixed when ``lam < 1``), or the distillation loss when there is a teacher."""
        smoothing = self.cfg.label_smoothing
        if self.teacher is None:
            loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
            if lam < 1.0:
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, y_other, label_smoothing=smoothing)
            return loss
        assert teacher is not None
        d = self.teacher.config
        return distillation_loss(logits, teacher, y, d.temperature, d.alpha, smoothing, y_other, lam)

    def _teacher_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's float32 logits of one training batch (eval mode, no gradient, same autocast)."""
        assert self.teacher is not None
        with torch.no_grad(), autocast(self.device, self.amp_dtype):
            return self.teacher.model(x).float()

    def _predict_teacher(self) -> torch.Tensor:
        """The teacher's float32 logits of every training row, by position, on the training device.

        Batched as the training steps are (``batch_size``), so a cached logit is computed as the
        per-batch path would compute it, and it does not depend on the resume-free ``eval_batch_size``.
        """
        assert self.teacher is not None
        logits = predict_logits(self.teacher.model, self.train_data, self.cfg.batch_size, self.amp_dtype)
        return logits.clone()  # an ordinary tensor, not an inference-mode one, so autograd may save it

    def _validate(self) -> dict[str, float]:
        start_s = time.perf_counter()
        metrics = split_metrics(self.model, self.val_data, self.cfg.eval_batch_size, self.amp_dtype)
        return {
            "val_loss": metrics["loss"],
            "val_accuracy": metrics["accuracy"],
            "val_macro_f1": metrics["macro_f1"],
            "val_s": time.perf_counter() - start_s,
        }

    def _end_epoch(self, row: dict[str, float]) -> None:
        """Book-keeping after an epoch: best weights, early stopping, divergence, checkpoints."""
        self.epoch += 1
        self.history.append(row)
        self.diverged = not math.isfinite(row["train_loss"])
        improved = row["val_macro_f1"] > self.best["val_macro_f1"]
        if improved:
            self.best = {"epoch": self.epoch, "val_macro_f1": row["val_macro_f1"], "val_accuracy": row["val_accuracy"]}
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        patience = self.cfg.early_stopping_patience
        if patience and not self.finished and self.epoch - self.best["epoch"] >= patience:
            self.stopped_early = True
        if self.out_dir is not None:
            state = self._state()
            if improved:  # best first: see resume(); best.pt is the best epoch itself, no second copy
                save_checkpoint({k: v for k, v in state.items() if k != "best_model"}, self.out_dir / "best.pt")
            save_checkpoint(state, self.out_dir / "last.pt")

    # -- checkpoints ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "spec": self.spec,
            "epoch": self.epoch,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
            "diverged": self.diverged,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": dict(self.best),
            "best_model": self.best_state,  # resume needs it even if best.pt is lost or one epoch ahead
            "history": [dict(row) for row in self.history],
            "rng": capture_rng(self.rng, self.device),
            "config": {
                "train": dataclasses.asdict(self.cfg),
                "data": dict(self.data_info),
                "distill": None if self.distill_info is None else dict(self.distill_info),
            },
        }

    def resume(self) -> None:
        """Continue from ``last.pt`` if present: weights, optimiser, schedule, RNGs, history, best.

        ``last.pt`` holds the best epoch's weights itself: ``best.pt`` is written before it, so a
        crash between the two leaves a ``best.pt`` one epoch ahead, and the re-run epoch need not
        improve again (CUDA, other thread counts), so ``best.pt`` alone could not restore the best.
        """
        assert self.out_dir is not None
        path = self.out_dir / "last.pt"
        if not path.exists():
            return
        state = load_checkpoint(path, self.spec)
        if "best_model" not in state or "fingerprint" not in state["config"]["data"]:
            raise UserError(
                f"cannot resume from {path}: it was written by an older version (no best weights or data "
                "fingerprint in it); train into another output folder"
            )
        self._check_compatible(path, state["config"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(self.rng, state["rng"], self.device)
        self.epoch = self.resumed_from = state["epoch"]
        self.best, self.history = dict(state["best"]), [dict(row) for row in state["history"]]
        self.stopped_early, self.diverged = state["stopped_early"], state["diverged"]
        if state["best_model"] is not None:
            self.best_state = {k: v.to(self.device) for k, v in state["best_model"].items()}

    def _check_compatible(self, path: Path, saved: dict[str, Any]) -> None:
        current = dataclasses.asdict(self.cfg)
        defaults = dataclasses.asdict(TrainConfig())  # a field added since the checkpoint had its default then
        changed = sorted(k for k in current if k not in RESUME_FREE_FIELDS
                         and saved["train"].get(k, defaults[k]) != current[k])  # fmt: skip
        changed += [f"data.{k}" for k in self.data_info if saved["data"].get(k) != self.data_info[k]]
        changed += _distill_changes(saved.get("distill"), self.distill_info)
        if changed:
            raise UserError(
                f"cannot resume from {path}: it was trained with different settings ({', '.join(changed)}); "
                "restore those settings, or train into another output folder"
            )

    def result(self, wall_s: float) -> TrainResult:
        """The run's :class:`TrainResult`."""
        written = self.out_dir is not None and self.epoch > 0
        return TrainResult(
            best_val_macro_f1=float(self.best["val_macro_f1"]),
            best_val_accuracy=float(self.best["val_accuracy"]),
            best_epoch=int(self.best["epoch"]),
            epochs_run=self.epoch,
            stopped_early=self.stopped_early,
            diverged=self.diverged,
            history=self.history,
            wall_s=wall_s,
            n_train=len(self.train_data),
            device=str(self.device),
            amp=_AMP_NAMES[self.amp_dtype],
            resumed_from_epoch=self.resumed_from,
            best_path=str(self.out_dir / "best.pt") if written else None,
            last_path=str(self.out_dir / "last.pt") if written else None,
            distilled_from=None if self.teacher is None else self.teacher.identity,
        )


def _seed_torch(seed: int, device: torch.device) -> None:
    """Seed torch's CPU generator and the training GPU's (both forked by :func:`train_model`)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


_AMP_NAMES = {None: "off", torch.float16: "fp16", torch.bfloat16: "bf16"}

# Cache the teacher's logits of un-augmented training rows once (False: per batch; tests compare the two).
_CACHE_TEACHER_LOGITS = True


def _prepare_teacher(
    teacher: Teacher | None, student: nn.Module, features: Features, device: torch.device
) -> Teacher | None:
    """Check the teacher fits the features, move it to the training device and freeze it."""
    if teacher is None:
        return None
    if teacher.model is student:
        raise ValueError("the teacher must be another module than the student being trained")
    teacher.check_compatible(features)
    teacher.model.to(device)
    teacher.freeze()
    return teacher


def _distill_changes(saved: dict[str, Any] | None, current: dict[str, Any] | None) -> list[str]:
    """The distillation fields that differ between a checkpoint and this run (teacher added or removed too)."""
    if saved is None or current is None:
        return [] if saved is current else ["distill.teacher"]
    return [f"distill.{k}" for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and kernels only, not on biases and normalisation scales."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
