"""The registry of search spaces: a name -> class dict filled by the ``@register_search_space`` decorator."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from common.errors import UserError

if TYPE_CHECKING:
    from search_spaces.base import SearchSpace

_SPACES: dict[str, type[SearchSpace]] = {}
S = TypeVar("S", bound="type[SearchSpace]")


def register_search_space(cls: S) -> S:
    """Class decorator registering a :class:`SearchSpace` subclass under its ``name`` attribute.

    Raises:
        TypeError: The class has no string ``name``.
        ValueError: The name is already registered (a second space would silently shadow it).

    Example:
        >>> @register_search_space
        ... class MySpace(SearchSpace):
        ...     name = "my_space"
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} needs a class attribute 'name' (str) to be registered")
    if name in _SPACES:
        raise ValueError(
            f"search space '{name}' is registered twice ({_SPACES[name].__qualname__} and {cls.__qualname__})"
        )
    _SPACES[name] = cls
    return cls


def list_search_spaces() -> list[str]:
    """Names of all registered search spaces, in registration order."""
    return list(_SPACES)


def create_search_space(name: str) -> SearchSpace:
    """A new instance of the search space registered as ``name``.

    Raises:
        UserError: Unknown name; the message lists the known ones.

    Example:
        >>> space = create_search_space("mel2d")
        >>> model = space.build(space.sample(random.Random(0)), n_classes=10, input_shape=(1, 40, 101))
    """
    if name not in _SPACES:
        raise UserError(f"unknown search space '{name}'; known search spaces: {', '.join(list_search_spaces())}")
    return _SPACES[name]()
