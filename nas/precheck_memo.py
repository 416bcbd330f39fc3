"""The precheck's results by candidate key, kept for the whole search: ``nas/prechecks.jsonl``.

The search asks ``problem.precheck`` twice about a candidate: when it breeds it (is it worth a
training, or should it be drawn again? see ``SearchConfig.feasible_retries``) and when it
evaluates it. Both get the same answer from here, computed once. Each answer is appended to the
file (fsynced) as it is computed, so a resumed search breeds exactly what the first session
bred even where the precheck is not repeatable (latency measured on this machine): its
decisions are read back, not measured again.

A line cut short by a crash is skipped (that candidate is prechecked again); the file is then
given its missing newline, so the next line starts clean.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic import append_jsonl, read_jsonl
from nas.problem import SearchProblem
from nas.records import cheap_violations, split_outputs
from nas.rng import preserved_global_rng

Cheap = tuple[dict[str, Any], dict[str, Any]]  # the precheck's metrics, and its other outputs (info)


class PrecheckMemo:
    """``problem.precheck`` by key, computed once per search and kept in a JSONL file.

    Args:
        problem: The problem whose ``precheck`` is asked.
        path: The file (``<run_dir>/nas/prechecks.jsonl``); ``None`` keeps the answers in memory only.
        resume: Read the answers of earlier sessions; a new search removes a file left in the folder
            (answers of another problem, whatever the other files say).
    """

    def __init__(self, problem: SearchProblem, path: Path | None, resume: bool = True) -> None:
        """Read the answers of earlier sessions (a torn last line is skipped and its newline restored)."""
        self.problem, self.path = problem, path
        self.answers: dict[str, Cheap] = {}
        if path is not None and not resume:
            path.unlink(missing_ok=True)
        if path is None or not path.exists():
            return
        with open(path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
        for line in read_jsonl(path)[0]:
            if isinstance(line, dict) and isinstance(line.get("key"), str):
                self.answers.setdefault(line["key"], (dict(line.get("metrics", {})), dict(line.get("info", {}))))

    def get(self, key: str, genome: Sequence[int]) -> Cheap:
        """The precheck's metrics and info of the canonical ``genome`` of ``key`` (global RNGs untouched)."""
        if key not in self.answers:
            with preserved_global_rng():
                outputs = self.problem.precheck(list(genome))
            answer = split_outputs(outputs) if outputs is not None else ({}, {})
            self.answers[key] = answer
            if self.path is not None:
                append_jsonl(self.path, [{"key": key, "metrics": answer[0], "info": answer[1]}])
        return self.answers[key]

    def passes(self, key: str, genome: Sequence[int]) -> bool:
        """Whether the candidate meets every constraint on the metrics the precheck gives."""
        return sum(cheap_violations(self.get(key, genome)[0], self.problem.constraints).values()) == 0
