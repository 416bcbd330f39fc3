"""The fixed baselines the search is compared against, as canonical strings of the ``mel2d`` space.

``tiny``/``small``/``medium`` are plain VGG-style CNNs (3x3 conv-bn-relu, stride-2 downsampling,
doubling widths) of about 0.50 / 1.25 / 2.84 MB of deployable fp32 weights (``size_kb`` 486 / 1,226 /
2,770 KiB at 12 classes: BatchNorm folded into the convolutions, see :mod:`search_spaces.profile`).
``dscnn`` follows DS-CNN-S of Zhang et al., "Hello Edge: Keyword Spotting on Microcontrollers"
(2017): a 64-channel 4x10 (mel bins x frames) stride-2 stem, then 4 depthwise-separable blocks of 64
channels. It differs in two ways the space imposes: the DS blocks add an identity shortcut (stride 1,
equal widths), and convolutions feeding a BatchNorm carry no bias. Its parameter count (about 23k at
12 classes; 88 KiB deployed) is what that structure has; the paper's 38.6K does not match the
structure it describes.
"""

from __future__ import annotations

from common.errors import UserError
from search_spaces._registry import create_search_space
from search_spaces.spec import ArchSpec

BASELINE_SPACE = "mel2d"
_BASELINES = {
    "tiny": "c16k3s1-c32k3s2r2-c64k3s2-c128k3s2-h128d20",
    "small": "c32k3s1-c32k3s2r2-c64k3s2r2-c128k3s2r2-h128d20",
    "medium": "c32k3s1-c64k3s2r2-c128k3s2-c192k3s2r2-h128d20",
    "dscnn": "c64k4x10s2-ds64k3s1-ds64k3s1-ds64k3s1-ds64k3s1-h0d20",
}


def list_baselines() -> list[str]:
    """Names of the baselines, smallest plain CNN first."""
    return list(_BASELINES)


def get_baseline(name: str) -> ArchSpec:
    """The spec of a named baseline (a spec of the ``mel2d`` space).

    Raises:
        UserError: Unknown name; the message lists the known ones.
    """
    if name not in _BASELINES:
        raise UserError(f"unknown baseline '{name}'; known baselines: {', '.join(list_baselines())}")
    return create_search_space(BASELINE_SPACE).parse(_BASELINES[name])
