"""Audio dataset loaders for real on-disk layouts, behind one registry.

Importing this package registers every built-in loader. Use :func:`load_dataset` to load by
name (or by detecting the layout), :func:`list_datasets` for the known names.
"""

from train.datasets import (  # noqa: F401  (imports register the loaders)
    csv_list,
    emotion,
    esc50,
    folders,
    fsdd,
    speech_commands,
    synthetic,
    urbansound8k,
)
from train.datasets.base import AudioDataset, Clip
from train.datasets.registry import detect_dataset, list_datasets, load_dataset, register_dataset

__all__ = [
    "AudioDataset",
    "Clip",
    "detect_dataset",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
