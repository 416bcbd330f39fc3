"""Typed settings of one training run: optimiser, schedule, regularisation, augmentation, device."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config_io import MAX_SEED

DEVICES = ("auto", "cpu", "cuda")
MEMORY_FORMATS = ("channels_last", "contiguous")
AMP_MODES = ("auto", "off", "fp16", "bf16")

# Fields that may change between a run and its resume: they change no CPU result, or (num_threads,
# memory_format) only its floating-point rounding, so a resume across them is no longer bit-identical.
RESUME_FREE_FIELDS = frozenset(
    {"device", "amp", "deterministic", "num_threads", "progress", "eval_batch_size", "in_memory_max_mb",
     "memory_format"}
)  # fmt: skip


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment masking (Park et al., 2019) on normalised (B, 1, F, T) batches; off by default.

    Each mask has a width drawn uniformly from ``0..max width`` and a start drawn uniformly so the
    mask lies inside the input; masked cells are set to 0, the per-band mean after normalisation.
    """

    freq_masks: int = 0  # frequency masks per example
    freq_mask_bins: int = 0  # largest frequency-mask width, in feature bins
    time_masks: int = 0  # time masks per example
    time_mask_frames: int = 0  # largest time-mask width, in frames

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_mask_bins", "time_masks", "time_mask_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.spec_augment.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        """Whether any mask can be non-empty."""
        return (self.freq_masks > 0 and self.freq_mask_bins > 0) or (self.time_masks > 0 and self.time_mask_frames > 0)


MAX_AUGMENT_COPIES = 32
AUGMENT_RANGES = {  # wave_augment field -> (lowest, highest) value a range may take
    "snr_db": (-10.0, 100.0),
    "gain_db": (-40.0, 40.0),
    "speed": (0.5, 2.0),
    "pitch_semitones": (-12.0, 12.0),
}


@dataclass(frozen=True)
class WaveAugmentConfig:
    """How many augmented copies of each clip to cache, and how each is perturbed; off by default.

    A range ``(low, high)`` draws uniformly; ``(x, x)`` fixes the value; the neutral value (1 for
    speed, 0 for the others) or a ``noise_prob`` of 0 turns a perturbation off.
    """

    copies: int = 0  # augmented versions of each clip, cached (0: off); training draws clean or a copy per epoch
    speed: tuple[float, float] = (0.9, 1.1)  # playback-rate factor (tempo and pitch together)
    pitch_semitones: tuple[float, float] = (0.0, 0.0)  # pitch shift at constant tempo (slower to make)
    shift_s: float = 0.1  # largest time shift either way, seconds (zero-filled)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    noise_prob: float = 0.5  # share of copies that get additive noise
    snr_db: tuple[float, float] = (10.0, 40.0)  # signal-to-noise ratio of the added noise
    background_dir: str | None = None  # folder of recordings used as noise instead of white noise
    seed: int = 0

    def __post_init__(self) -> None:
        for name, (lowest, highest) in AUGMENT_RANGES.items():
            value = tuple(getattr(self, name))
            if len(value) != 2 or not lowest <= value[0] <= value[1] <= highest:
                raise ValueError(
                    f"train.wave_augment.{name} must be a range [low, high] with {lowest:g} <= low <= high <= "
                    f"{highest:g}, got {list(value)}"
                )
            object.__setattr__(self, name, (float(value[0]), float(value[1])))
        if not 0 <= self.copies <= MAX_AUGMENT_COPIES or int(self.copies) != self.copies:
            raise ValueError(
                f"train.wave_augment.copies must be a whole number in 0..{MAX_AUGMENT_COPIES}, got {self.copies}"
            )
        if not 0 <= self.noise_prob <= 1:
            raise ValueError(f"train.wave_augment.noise_prob must be in [0, 1], got {self.noise_prob}")
        if not 0 <= self.shift_s <= 5:
            raise ValueError(f"train.wave_augment.shift_s must be in [0, 5] seconds, got {self.shift_s}")

    @property
    def enabled(self) -> bool:
        """Whether copies are made."""
        return self.copies > 0

    def check_clip(self, clip_seconds: float) -> None:
        """Refuse a shift that the clip length cannot hold (it would leave a copy mostly silence).

        Raises:
            ValueError: ``shift_s`` is half the clip length or more.
        """
        if self.enabled and self.shift_s >= clip_seconds / 2:
            raise ValueError(
                f"train.wave_augment.shift_s ({self.shift_s:g} s) must be less than half the clip "
                f"(features.clip_seconds={clip_seconds:g} s)"
            )


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; the defaults are full training's (baselines, survivors).

    The search's accuracy proxy has its own defaults (``pipeline.nas_config.default_proxy``).
    Label smoothing 0.1 is on by default: on FSDD with an unseen test speaker it raised the tiny
    baseline from 57.5 +- 8.7 to 65.3 +- 4.7 % and DS-CNN from 56.0 to 58.4 % (10 epochs, 3 seeds;
    ``benchmarks/bench_recipe.py``); mixup and SpecAugment gave nothing on top and stay off.
    """

    epochs: int = 10  # passes over the (subset of the) training split
    batch_size: int = 32  # training mini-batch size; the last incomplete batch of an epoch is dropped
    lr: float = 3e-3  # peak AdamW learning rate, reached at the end of warm-up
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    warmup_epochs: float = 1.0  # linear warm-up length in epochs (fractions allowed), then cosine decay to 0
    label_smoothing: float = 0.1  # cross-entropy label smoothing in [0, 1)
    grad_clip_norm: float | None = 5.0  # clip the global gradient L2 norm to this (None: no clipping)
    early_stopping_patience: int | None = None  # stop after this many epochs without val macro-F1 gain (None/0: off)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    mixup_alpha: float = 0.0  # mixup Beta(alpha, alpha) parameter (0: off)
    wave_augment: WaveAugmentConfig = field(default_factory=WaveAugmentConfig)  # cached waveform copies (0: off)
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    amp: str = "auto"  # auto (bf16 or fp16 on CUDA, off on CPU) | off | fp16 | bf16 (the last two need CUDA)
    deterministic: bool = True  # on CUDA: deterministic cuDNN/cuBLAS kernels while training (train.device); CPU: no-op
    num_threads: int = 1  # CPU intra-op threads during training; fixed, since results depend on it
    # Layout of 4-D weights and activations while training: channels_last lets oneDNN (CPU) and cuDNN
    # skip a layout conversion around every convolution (x0.98-x2.10 per candidate, x1.37 in total,
    # on a 2-core Xeon: benchmarks/bench_memory_format.py); contiguous is the layout of runs before it.
    memory_format: str = "channels_last"
    train_subset: float = 1.0  # <= 1: fraction of the train split; > 1: at most this many training examples
    subset_seed: int = 0  # seed of the train_subset draw; keep it fixed so all NAS candidates see the same rows
    seed: int = 0  # seed of initialisation, shuffling, augmentation and dropout
    reinit: bool = True  # re-initialise the model's weights from seed (False: train the given weights)
    eval_batch_size: int = 64  # batch size of validation passes (small batches stay in the CPU cache)
    in_memory_max_mb: int = 1024  # load a split as one tensor (on the device) up to this size; stream above
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", "must be >= 1", self.epochs)
        _check(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        _check(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1", self.eval_batch_size)
        _check(self.lr > 0, "lr", "must be > 0", self.lr)
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0", self.weight_decay)
        _check(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0", self.warmup_epochs)
        _check(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)", self.label_smoothing)
        clip = self.grad_clip_norm
        _check(clip is None or clip > 0, "grad_clip_norm", "must be > 0 or None", clip)
        patience = self.early_stopping_patience
        _check(patience is None or patience >= 0, "early_stopping_patience", "must be >= 0 or None", patience)
        _check(self.mixup_alpha >= 0, "mixup_alpha", "must be >= 0", self.mixup_alpha)
        _check(self.device in DEVICES, "device", f"must be one of {', '.join(DEVICES)}", self.device)
        _check(self.amp in AMP_MODES, "amp", f"must be one of {', '.join(AMP_MODES)}", self.amp)
        _check(self.num_threads >= 1, "num_threads", "must be >= 1", self.num_threads)
        _check(self.memory_format in MEMORY_FORMATS, "memory_format", f"must be one of {', '.join(MEMORY_FORMATS)}",
               self.memory_format)  # fmt: skip
        subset = self.train_subset
        _check(subset > 0 and (subset <= 1 or float(subset).is_integer()), "train_subset", _SUBSET_RULE, subset)
        _check(self.in_memory_max_mb >= 0, "in_memory_max_mb", "must be >= 0", self.in_memory_max_mb)
        for name in ("seed", "subset_seed"):
            seed = getattr(self, name)
            _check(0 <= seed <= MAX_SEED, name, f"must be a whole number in 0..{MAX_SEED}", seed)

    def recipe(self) -> str:
        """The settings that shape the result, in one line for results tables (``recipe`` columns)."""
        parts = [f"{self.epochs} epochs", f"batch {self.batch_size}", f"AdamW lr {self.lr:g} wd {self.weight_decay:g}",
                 f"warm-up {self.warmup_epochs:g} + cosine", f"label smoothing {self.label_smoothing:g}",
                 f"mixup {self.mixup_alpha:g}"]  # fmt: skip
        spec = self.spec_augment
        masks = f"{spec.freq_masks}x{spec.freq_mask_bins} bins, {spec.time_masks}x{spec.time_mask_frames} frames"
        parts.append(f"SpecAugment {masks}" if spec.enabled else "SpecAugment off")
        wave = self.wave_augment
        parts.append(f"waveform copies {wave.copies}" if wave.enabled else "waveform augmentation off")
        if self.train_subset != 1.0:
            parts.append(f"train subset {self.train_subset:g}")
        return "; ".join(parts)

    def subset_size(self, n_train: int) -> int:
        """Number of training examples used out of ``n_train`` (at least 1)."""
        if self.train_subset <= 1:
            return max(1, min(n_train, round(self.train_subset * n_train)))
        return min(n_train, int(self.train_subset))


_SUBSET_RULE = "must be a fraction in (0, 1] or a whole number of examples > 1"


def _check(ok: bool, name: str, rule: str, value: object) -> None:
    if not ok:
        raise ValueError(f"train.{name} {rule}, got {value!r}")
