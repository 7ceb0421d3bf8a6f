"""Errors a user can cause: reported as one line by the command-line tools."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input or options, shown as one clear line (no traceback)."""


def run_reporting(action: Callable[[], str]) -> int:
    """Run a small command's ``action``: print the line it returns and give exit code 0, or
    print a :class:`UserError` as one ``error:`` line on stderr and give 2."""
    try:
        said = action()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(said)
    return 0
