"""The one exception type for mistakes a user can fix (bad paths, bad configs, bad data)."""

from __future__ import annotations


class UserError(Exception):
    """A problem caused by the user's input, reported as one clear line and exit code 2.

    The message must say what was expected and, where possible, how to fix it. The CLI prints
    it without a traceback; library callers can catch it like any other exception.
    """

    exit_code = 2
