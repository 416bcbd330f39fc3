"""Search spaces: genomes, ArchSpec decoding, model building, the registry, the fixed baselines and model profiles.

Importing the package registers the built-in spaces (``mel2d``, ``wave1d``).

Example:
    >>> space = create_search_space("mel2d")
    >>> spec = space.decode(space.gene_bounds)  # any list[int] within the bounds
    >>> model = space.build(spec, n_classes=10, input_shape=(1, 40, 101))
    >>> str(spec) == str(space.parse(str(spec)))
    True
"""

from search_spaces import mel2d, wave1d  # noqa: F401  (imports register the spaces)
from search_spaces._registry import create_search_space, list_search_spaces, register_search_space
from search_spaces.base import Gene, Genome, SearchSpace
from search_spaces.baselines import get_baseline, list_baselines
from search_spaces.blocks import build_unit
from search_spaces.functional import build_model, spec_from_dict, trace
from search_spaces.profile import ModelProfile, folded_param_count, profile, profile_model
from search_spaces.spec import ArchSpec, LayerSpec
from search_spaces.units import UnitInfo, deployable_size_kb, int8_size_kb

__all__ = [
    "ArchSpec",
    "Gene",
    "Genome",
    "LayerSpec",
    "ModelProfile",
    "SearchSpace",
    "UnitInfo",
    "build_model",
    "build_unit",
    "create_search_space",
    "deployable_size_kb",
    "folded_param_count",
    "get_baseline",
    "int8_size_kb",
    "list_baselines",
    "list_search_spaces",
    "profile",
    "profile_model",
    "register_search_space",
    "spec_from_dict",
    "trace",
]
