"""The search: DEAP NSGA-II with constraints, evaluation journal, checkpoint and resume, parallel backends, fronts.

Public API::

    from nas import SearchProblem, ObjectiveSpec, Constraint, SearchConfig, run_search
    result = run_search(MyProblem(...), SearchConfig(population=32, generations=20), "runs/x")
    result = run_search(MyProblem(...), SearchConfig(population=32, generations=40), "runs/x", resume=True)

See :mod:`nas.problem` for the interface a problem implements, :mod:`nas.search` for resume and
recovery, :mod:`nas.records` for the journal line format, :mod:`nas.checkpoint` for the
checkpoint, and :mod:`nas.hypervolume` for the normalisation and reference point.
"""

from nas.backends import recommended_dask_config
from nas.config import SEARCH_RELEVANT_FIELDS, SearchConfig
from nas.history import TIMING_COLUMNS
from nas.problem import Constraint, ObjectiveSpec, SearchProblem
from nas.records import EvalRecord, ProblemContractError
from nas.result import SearchResult
from nas.search import run_search

__all__ = [
    "SEARCH_RELEVANT_FIELDS",
    "TIMING_COLUMNS",
    "Constraint",
    "EvalRecord",
    "ObjectiveSpec",
    "ProblemContractError",
    "SearchConfig",
    "SearchProblem",
    "SearchResult",
    "recommended_dask_config",
    "run_search",
]
