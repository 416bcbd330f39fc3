"""Progress bars that suit where the output goes: a live tqdm bar on a terminal, plain lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe (a CI log, ``nohup``,
``tee``) that becomes hundreds of overwritten fragments on one line. :func:`progress` gives the
same bar on a terminal, and elsewhere a bar that prints one whole line each time another
``step_pct`` per cent of the work is done (and once at the end), with the rate, the time elapsed
and left, and the postfix.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:3.0f}%), {elapsed} elapsed, {remaining} left{postfix}"


class LineProgress(tqdm):
    """A tqdm bar that writes whole lines, one per ``step_pct`` per cent of ``total`` (no carriage returns)."""

    def __init__(self, *args: Any, step_pct: int = 10, **kwargs: Any) -> None:
        self._step_pct = max(1, int(step_pct))
        self._printed_step = -1
        self._printed_n = -1
        kwargs.setdefault("bar_format", LINE_FORMAT)
        kwargs.update(mininterval=0, miniters=1, leave=False, dynamic_ncols=False)
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Print a line when another step is complete; never a partial redraw."""
        if msg == "":  # tqdm clearing its bar on close: nothing to clear
            return False
        if not self.total:
            return False
        step = int(100 * self.n / self.total) // self._step_pct
        if step == self._printed_step:
            return False
        self._print_line()
        self._printed_step = step
        return False

    def _print_line(self) -> None:
        self.fp.write(self.format_meter(**self.format_dict) + "\n")
        self.fp.flush()
        self._printed_n = self.n

    def close(self) -> None:
        """The final count as one line (unless just printed), then close."""
        if not self.disable and self.n != self._printed_n and self.n > 0:
            self._print_line()
        super().close()


def is_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (standard error by default) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def progress(iterable: Iterable[Any] | None = None, *, step_pct: int = 10, **kwargs: Any) -> tqdm:
    """A progress bar: tqdm's on a terminal, :class:`LineProgress` when output goes to a file or pipe.

    Args:
        iterable: What to iterate over, as for :class:`tqdm.tqdm`.
        step_pct: Off a terminal, print a line each time this many more per cent are done.
        **kwargs: Passed to tqdm (``total``, ``desc``, ``unit``, ``disable``, ``initial``, ...).

    Returns:
        The bar (a :class:`tqdm.tqdm`), to be used as tqdm's.
    """
    if is_terminal(kwargs.get("file")):
        return tqdm(iterable, **kwargs)
    kwargs.pop("leave", None)
    return LineProgress(iterable, step_pct=step_pct, **kwargs)
