"""Typed configs from YAML/TOML files: unknown keys and wrong types are rejected by name."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

import dacite
import tomllib
import yaml

from common.errors import UserError

T = TypeVar("T")

_DACITE = dacite.Config(strict=True, cast=[tuple], type_hooks={float: float})


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON config file into a dict.

    Raises:
        UserError: The file is missing, has another extension, or does not parse to a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path} (expected a .yaml, .yml, .toml or .json file)")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise UserError(f"config file {path} has extension '{suffix}'; expected .yaml, .yml, .toml or .json")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"config file {path} does not parse: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def check_known_keys(cls: type, data: dict[str, Any], where: str = "") -> None:
    """Reject keys that are not fields of dataclass ``cls`` (recursing into nested dataclasses).

    Raises:
        UserError: Naming the unknown key with its dotted path and listing the valid keys.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise UserError(
                f"unknown config key '{path}'; valid keys{' in ' + where if where else ''}: " + ", ".join(names)
            )
        sub = hints[key]
        if dataclasses.is_dataclass(sub) and isinstance(value, dict):
            check_known_keys(sub, value, path)
        elif _is_sequence_type(sub) and value is not None and not isinstance(value, (list, tuple)):
            raise UserError(f"config field '{path}' expects a list (e.g. [{value!r}]), got {value!r}")


def _is_sequence_type(tp: Any) -> bool:
    """Whether ``tp`` is ``tuple[...]``/``list[...]`` (possibly inside ``Optional``)."""
    if typing.get_origin(tp) in (tuple, list):
        return True
    return any(_is_sequence_type(arg) for arg in typing.get_args(tp) if arg is not type(None))


def dataclass_from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a plain dict, strictly.

    Args:
        cls: The (possibly nested) config dataclass.
        data: Plain data, e.g. from :func:`load_config_file`; missing keys take defaults.
        where: Name of the source, used in error messages.

    Raises:
        UserError: On an unknown key, a wrong value type, or a value the dataclass's
            ``__post_init__`` rejects.
    """
    check_known_keys(cls, data)
    try:
        return dacite.from_dict(cls, data, config=_DACITE)
    except dacite.WrongTypeError as exc:
        raise UserError(
            f"{where}: field '{exc.field_path}' expects {_type_name(exc.field_type)}, got {exc.value!r}"
        ) from None
    except dacite.DaciteError as exc:
        raise UserError(f"{where}: {exc}") from None
    except (ValueError, TypeError) as exc:  # __post_init__ validation, or a value of an unusable type
        raise UserError(f"{where}: {exc}") from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def merge_dicts(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (override wins on leaves)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out
