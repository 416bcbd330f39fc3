"""The search's survivors: its feasible Pareto set, thinned by crowding distance to the ones worth training fully.

Read from the run folder alone: ``nas/pareto.csv`` (the final feasible front), ``nas/search.json``
(objective names, directions and reference box) and ``nas/journal.jsonl`` (each candidate's proxy
scores). ``survivors.csv`` records every member of the front and why it was kept or dropped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text
from common.errors import UserError
from common.hashing import stable_hash
from nas.journal import Journal
from nas.ranking import thin_by_crowding
from nas.runfolder import SearchPaths

QUALITY = ("accuracy", "macro_f1")
PINNED = "named in quantize.survivor_specs (--mode full: the most accurate whose quantization fits the budget)"


@dataclass(frozen=True)
class Survivor:
    """One architecture of the search's front picked for full training.

    Attributes:
        name: Folder name under ``models/`` (``nas-`` + a short hash of the spec: stable across resumes).
        spec: Canonical ArchSpec string.
        space: Search space of the spec.
        proxy: The candidate's proxy scores and costs from the journal (``accuracy``, ``macro_f1``,
            latency per device, ``size_kb``, ...).
        reason: Why it was kept (which extremes it holds, or that it spreads the front).
    """

    name: str
    spec: str
    space: str
    proxy: dict[str, float]
    reason: str


def survivor_name(spec: str) -> str:
    """``nas-<6 hex digits>``, a stable, file-name-safe name for a searched spec."""
    return f"nas-{stable_hash(spec, length=6)}"


def _objectives(paths: SearchPaths) -> tuple[list[dict[str, Any]], str]:
    try:
        settings = json.loads(paths.settings.read_text())["settings"]["problem"]
        return settings["objectives"], settings["describe"]["space"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{paths.settings} is missing or unreadable ({type(exc).__name__}); the search's settings are needed to "
            "pick survivors (re-run --mode nas --resume with the same --out)"
        ) from None


def _front(paths: SearchPaths) -> list[dict[str, str]]:
    try:
        with open(paths.pareto, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError:
        raise UserError(f"{paths.pareto} is missing; finish or resume the search (--mode nas --resume)") from None


def _normalised(row: dict[str, str], objectives: list[dict[str, Any]]) -> list[float]:
    """Objective values scaled to the search's reference box, 0 = best, 1 = reference (worst)."""
    out = []
    for o in objectives:
        span = float(o["worst"]) - float(o["best"])
        value = float(row[o["name"]])
        out.append((value - float(o["best"])) / span if span else 0.0)
    return out


def select_survivors(
    run_dir: Path, k: int, records: dict[str, Any] | None = None, only: tuple[str, ...] = ()
) -> tuple[list[Survivor], list[dict[str, Any]]]:
    """The feasible Pareto set of the run's search thinned to ``k`` by crowding distance.

    The extremes of every objective are kept first (infinite crowding distance); when ``k`` is
    smaller than the number of extremes, the most accurate member is kept longest. Members are
    considered best quality first.

    Args:
        run_dir: The run folder.
        k: Survivors wanted (``>= 0``).
        records: The search journal's records by key, when the caller has read them already.
        only: When given, exactly the front members with these specs are kept instead (``--mode
            full`` picks them to fit its whole-run budget); ``k`` is then ignored.

    Returns:
        The survivors (best quality first) and one row per front member for ``survivors.csv``.

    Raises:
        UserError: The folder holds no search, or its files are unreadable.
    """
    paths = SearchPaths(run_dir)
    if not paths.has_search():
        return [], []
    objectives, space = _objectives(paths)
    quality = next((o["name"] for o in objectives if o["name"] in QUALITY), objectives[0]["name"])
    front = sorted(_front(paths), key=lambda r: (-float(r[quality]), r["key"]))
    points = [_normalised(r, objectives) for r in front]
    kept = {i for i, r in enumerate(front) if r["key"] in only} if only else set(thin_by_crowding(points, k))
    dropped = f"dropped: crowded (thinned to {k})" if not only else "dropped: not in quantize.survivor_specs"
    if records is None:
        records = {r.key: r for r in Journal(paths.journal).read()}
    survivors, rows = [], []
    for i, row in enumerate(front):
        reason = (PINNED if only else _reason(i, points, objectives)) if i in kept else dropped
        metrics = records[row["key"]].metrics if row["key"] in records else {}
        proxy = {name: float(v) for name, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        name = survivor_name(row["key"])
        rows.append({"name": name, "spec": row["key"], "kept": i in kept, "reason": reason,
                     **{o["name"]: row[o["name"]] for o in objectives}})  # fmt: skip
        if i in kept:
            survivors.append(Survivor(name, row["key"], space, proxy, reason))
    return survivors, rows


def _reason(i: int, points: list[list[float]], objectives: list[dict[str, Any]]) -> str:
    extremes = [o["name"] for m, o in enumerate(objectives) if points[i][m] == min(p[m] for p in points)]
    return f"best {', '.join(extremes)} on the front" if extremes else "spreads the front (crowding distance)"


def write_survivors(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``survivors.csv`` (every front member: name, spec, kept, reason, objectives)."""
    path = run_dir / "survivors.csv"
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        buf.write("name,spec,kept,reason\n")
    atomic_write_text(path, buf.getvalue())
    return path
