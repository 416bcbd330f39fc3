"""Typed configs from YAML/TOML files: unknown keys and wrong types are rejected by name."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import dacite
import tomllib
import yaml

from common.errors import UserError
from common.text_files import read_user_text

T = TypeVar("T")
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")
MAX_CONFIG_BYTES = 16 << 20  # a config of this tool is a few KiB; a larger file is the wrong file
MAX_SEED = 2**31 - 1  # every seed fits numpy's and scikit-learn's 32-bit range, with room for seed + k offsets

_DACITE = dacite.Config(strict=True, cast=[tuple], type_hooks={float: float})


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON config file into a dict.

    Raises:
        UserError: The file is missing, has another extension, is not UTF-8 text, or does not
            parse to a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path} (expected a .yaml, .yml, .toml or .json file)")
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise UserError(f"config file {path} has extension '{suffix}'; expected .yaml, .yml, .toml or .json")
    text = read_user_text(path, "config file", max_bytes=MAX_CONFIG_BYTES)
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"config file {path} does not parse: {first_line}") from None
    except RecursionError:
        raise UserError(f"config file {path} nests too deeply to be a config (sections hold fields)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def check_known_keys(cls: type, data: dict[str, Any], where: str = "") -> None:
    """Reject keys that are not fields of dataclass ``cls`` (recursing into nested dataclasses).

    Raises:
        UserError: Naming the unknown key with its dotted path and listing the valid keys, or a
            section given as a single value.
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
        if dataclasses.is_dataclass(sub) and not isinstance(value, dict):
            raise UserError(f"config field '{path}' is a section: it expects a mapping of fields (e.g. "
                            f"{path.split('.')[-1]}: {{...}}), got {value!r}")  # fmt: skip
        if dataclasses.is_dataclass(sub):
            check_known_keys(sub, value, path)
        elif _is_sequence_type(sub) and value is None and type(None) not in typing.get_args(sub):
            raise UserError(f"config field '{path}' expects a list (e.g. []), got null")
        elif _is_sequence_type(sub) and value is not None and not isinstance(value, (list, tuple)):
            raise UserError(f"config field '{path}' expects a list (e.g. [{value!r}]), got {value!r}")


def _is_sequence_type(tp: Any) -> bool:
    """Whether ``tp`` is ``tuple[...]``/``list[...]`` (possibly inside ``Optional``)."""
    if typing.get_origin(tp) in (tuple, list):
        return True
    return any(_is_sequence_type(arg) for arg in typing.get_args(tp) if arg is not type(None))


def number_problem(cls: type, data: dict[str, Any], where: str = "") -> tuple[str, str] | None:
    """The first numeric field of ``data`` holding NaN, infinity or a boolean (recursing into sections).

    Every number in a config must be finite: no field means "unbounded" by infinity (constraints
    and budgets use None or 0 for that), and NaN compares false with every bound, so it would slip
    through range checks. A boolean is not a number, though Python counts it as one.

    Args:
        cls: The config dataclass ``data`` is for (keys it does not know are left to :func:`check_known_keys`).
        data: Plain data of one source (a file, the flags, a run folder's ``config.json``).
        where: Dotted path of ``data`` inside the whole config.

    Returns:
        ``(dotted field path, what is wrong)``, e.g. ``("nas.max_latency_ms", "must be a finite number,
        got nan")``, or None when every number is usable.
    """
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in hints:
            continue
        path = f"{where}.{key}" if where else key
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            found = number_problem(tp, value, path)
        else:
            found = _value_problem(tp, value, path)
        if found:
            return found
    return None


def _value_problem(tp: Any, value: Any, path: str) -> tuple[str, str] | None:
    """What is wrong with one value for a field of type ``tp`` (its items, for a list field)."""
    members = _member_types(tp)
    if float in members and not isinstance(value, (int, float, str, type(None))):
        return path, f"expects a number, got {value!r}"  # the float type hook would fail on it without the field
    if isinstance(value, (list, tuple)):
        item_types = [a for a in typing.get_args(_without_none(tp)) if a is not Ellipsis]
        for i, item in enumerate(value):
            found = _value_problem(item_types[0] if item_types else Any, item, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(value, bool):
        numeric_only = bool(members & {int, float}) and bool not in members
        return (path, f"expects a number, got {str(value).lower()}") if numeric_only else None
    if float in members and isinstance(value, str) and str not in members:
        # a float field also takes text: "1e-3" (YAML 1.1 reads it as a string), but also "nan"
        try:
            value = float(value)
        except ValueError:
            return path, f"expects a number, got {value!r}"
    if isinstance(value, float) and (float in members or tp is Any) and not math.isfinite(value):
        return path, f"must be a finite number, got {value} (leave it out for the default)"
    return None


def _member_types(tp: Any) -> set[Any]:
    """``tp`` itself, or the members of a Union/Optional."""
    args = typing.get_args(tp)
    return set(args) if typing.get_origin(tp) in (typing.Union, types.UnionType) else {tp}


def _without_none(tp: Any) -> Any:
    members = [t for t in _member_types(tp) if t is not type(None)]
    return members[0] if len(members) == 1 else tp


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
    found = number_problem(cls, data)
    if found:
        raise UserError(f"{where}: field '{found[0]}' {found[1]}")
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


def check_seed(name: str, value: int) -> None:
    """Refuse a seed that numpy, scikit-learn or torch would reject later, mid-run.

    Raises:
        ValueError: ``value`` is not in ``0..MAX_SEED`` (room is left for the ``seed + k`` offsets
            of repeated runs); the message names the field.
    """
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number in 0..{MAX_SEED}, got {value}")


def merge_dicts(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (override wins on leaves)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out
