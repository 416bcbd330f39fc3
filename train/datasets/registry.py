"""Registry of dataset loaders: register by decorator, load by name or by detected layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from train.datasets.base import AudioDataset
from train.datasets.metadata import check_inside


@dataclass(frozen=True)
class DatasetLoader:
    """How to recognise and read one on-disk layout.

    Attributes:
        name: Registry name, used on the command line (``--dataset NAME``).
        load: Reads the layout under a root folder (or file) into an :class:`AudioDataset`.
        detect: Cheap check whether a path has this layout (used when no name is given).
        expected: Human description of the files the layout needs, quoted in error messages.
        generic: A catch-all layout (CSV manifest, folder per class), tried after the specific ones.
    """

    name: str
    load: Callable[[Path], AudioDataset]
    detect: Callable[[Path], bool]
    expected: str
    generic: bool = False


_LOADERS: dict[str, DatasetLoader] = {}


def register_dataset(name: str, detect: Callable[[Path], bool], expected: str, generic: bool = False):
    """Decorator registering ``load(root) -> AudioDataset`` under ``name``.

    Example:
        >>> @register_dataset("mine", detect=lambda p: (p / "x.csv").exists(), expected="x.csv")
        ... def load_mine(root): ...
    """

    def wrap(load: Callable[[Path], AudioDataset]) -> Callable[[Path], AudioDataset]:
        if name in _LOADERS:
            raise ValueError(f"dataset loader '{name}' is registered twice")
        _LOADERS[name] = DatasetLoader(name=name, load=load, detect=detect, expected=expected, generic=generic)
        return load

    return wrap


def list_datasets() -> list[str]:
    """Names of all registered loaders, in registration order."""
    return list(_LOADERS)


def get_loader(name: str) -> DatasetLoader:
    """The loader registered as ``name``.

    Raises:
        UserError: Unknown name; the message lists the known ones.
    """
    if name not in _LOADERS:
        raise UserError(f"unknown dataset '{name}'; known datasets: {', '.join(list_datasets())}")
    return _LOADERS[name]


def detect_dataset(path: Path) -> str:
    """Name of the first loader whose layout matches ``path``.

    Raises:
        UserError: No layout matches; the message lists what each loader expects.
    """
    candidates = [ld for ld in _LOADERS.values() if ld.name != "synthetic"]
    for loader in sorted(candidates, key=lambda ld: ld.generic):  # specific layouts first
        if loader.detect(path):
            return loader.name
    expected = "; ".join(f"{n}: {ld.expected}" for n, ld in _LOADERS.items() if n != "synthetic")
    raise UserError(f"no known dataset layout found at {path}. Expected one of: {expected}")


def dataset_root(path: str | Path) -> Path:
    """The dataset root ``path`` names, resolved.

    Raises:
        UserError: Nothing exists at ``path``.
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise UserError(f"dataset path does not exist: {root}")
    return root


def load_dataset(path: str | Path, name: str | None = None, allow_outside: bool = False) -> AudioDataset:
    """Load the dataset at ``path`` with the named loader, or detect the layout.

    Args:
        path: Dataset root folder (or the CSV file for the ``csv`` loader).
        name: A registered loader name; ``None`` detects the layout.
        allow_outside: Follow metadata paths that leave the dataset folder (``../``, absolute
            paths); by default they are refused (``data.allow_outside_paths``).

    Raises:
        UserError: Missing path, unknown name, a layout that does not match, metadata paths
            outside the dataset folder, or no clips.
    """
    root = dataset_root(path)
    if name is None:
        name = detect_dataset(root)
    loader = get_loader(name)
    if not loader.detect(root):
        raise UserError(f"{root} does not look like a '{name}' dataset: expected {loader.expected}")
    dataset = loader.load(root)
    listed = [c.path for c in dataset.clips] + [p for p, _ in dataset.missing]
    check_inside(listed, dataset.folder, dataset.metadata or dataset.root, allow_outside)
    if not dataset.clips:
        raise UserError(f"no audio clips found for dataset '{name}' at {root}: expected {loader.expected}")
    if len(dataset.classes) < 2:
        raise UserError(f"dataset '{name}' at {root} has {len(dataset.classes)} class(es); at least 2 are needed")
    return dataset
