"""The generation checkpoint and the run's settings file, both plain JSON written atomically.

``<run_dir>/nas/search.json`` is written once when a run starts: the search-relevant settings
(``SearchConfig.relevant()`` and ``problem_signature``), their hash, and the full config. A
resume compares the current settings with it and refuses a change, naming the fields.

``<run_dir>/nas/checkpoint.json`` is rewritten (temp file + ``os.replace``) after every
generation::

    {"format_version": 1, "config_hash": "...", "settings": {"config": {...}, "problem": {...}},
     "next_generation": 7,
     "population": [{"genome": [...], "key": "...", "crowding": 0.42}, ...],
     "evaluated_keys": ["...", ...], "counters": {"evaluations": 168, ...},
     "history": [{...row...}, ...], "elapsed_s": 12.5,
     "rng": {"python": [3, [...625 ints...], null], "numpy": {...}, "torch": "base64" or null},
     "hypervolume": {"normalisation": "...", "reference_point_z": [1.0, 1.0], "objectives": {...}}}

Evaluation results are not copied into it: they are in the journal, looked up by key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from common.hashing import stable_hash
from nas.state import SearchState

FORMAT_VERSION = 1

# Settings added after runs were first written, with the value that reproduces such a run: a run
# folder that lacks them is compared as if it held these (None: the current value, because what
# the old run did does not depend on it: kinds and operator parameters mattered only to operators
# it did not have). An old run is therefore resumed only with ``variation="uniform"``.
ADDED_SETTINGS: dict[tuple[str, str], Any] = {
    ("config", "variation"): "uniform",
    ("config", "sbx_eta"): None,
    ("config", "pm_eta"): None,
    ("config", "step_max"): None,
    ("problem", "gene_kinds"): None,
}


class CheckpointError(ValueError):
    """The checkpoint is unreadable or inconsistent; the search recovers by replaying the journal."""


def settings_hash(settings: dict[str, Any]) -> str:
    """Stable hash of the search-relevant settings."""
    return stable_hash(settings)


def write_settings(path: Path, settings: dict[str, Any], full_config: dict[str, Any]) -> None:
    """Write ``search.json`` for a new run."""
    atomic_write_json(
        path,
        {
            "format_version": FORMAT_VERSION,
            "settings": settings,
            "config_hash": settings_hash(settings),
            "config": full_config,
        },
    )


def read_settings(path: Path) -> dict[str, Any] | None:
    """The settings stored in ``search.json`` or ``checkpoint.json``, or ``None`` when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["settings"] if isinstance(data.get("settings"), dict) else None
    except (OSError, ValueError, AttributeError, KeyError):
        return None


def upgrade_settings(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with every setting of :data:`ADDED_SETTINGS` it lacks filled in (see there)."""
    upgraded = {name: dict(part) if isinstance(part, dict) else part for name, part in stored.items()}
    for (section, name), legacy in ADDED_SETTINGS.items():
        part = upgraded.get(section)
        if isinstance(part, dict) and name not in part and name in current.get(section, {}):
            part[name] = current[section][name] if legacy is None else legacy
    return upgraded


def changed_fields(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted names of the leaves that differ, e.g. ``config.population`` or ``problem.describe.epochs``."""
    changed: list[str] = []
    for name in sorted(set(stored) | set(current)):
        old, new = stored.get(name), current.get(name)
        if isinstance(old, dict) and isinstance(new, dict):
            changed.extend(f"{name}.{sub}" for sub in changed_fields(old, new))
        elif _plain(old) != _plain(new):
            changed.append(f"{name} ({_shown(stored, name)} -> {_shown(current, name)})")
    return changed


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _shown(part: dict[str, Any], name: str) -> str:
    """``part[name]`` for a message; ``absent`` where the run was written before the setting existed."""
    return _short(part[name]) if name in part else "absent"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def save_checkpoint(
    path: Path, state: SearchState, settings: dict[str, Any], rng: dict[str, Any], hv: dict[str, Any]
) -> None:
    """Atomically write the checkpoint for ``state`` (see the module docstring)."""
    data = {"format_version": FORMAT_VERSION, "config_hash": settings_hash(settings), "settings": settings}
    data.update(state.to_json())
    data["rng"] = rng
    data["hypervolume"] = hv
    atomic_write_json(path, data, indent=None)


def load_checkpoint(path: Path, settings: dict[str, Any]) -> tuple[SearchState, dict[str, Any]]:
    """Read a checkpoint written for ``settings``.

    Returns:
        The state and the stored RNG states.

    Raises:
        CheckpointError: Missing, unreadable, another format, other settings, or incomplete.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has an unknown format")
    if data.get("config_hash") != settings_hash(settings):
        raise CheckpointError(f"checkpoint {path} was written for other settings")
    try:
        state = SearchState.from_json(data)
        rng = data["rng"]
        if not isinstance(rng.get("python"), list) or not isinstance(rng.get("numpy"), dict):
            raise KeyError("rng")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete ({exc!r})") from None
    return state, rng
