"""Errors a user can cause: reported as one line by the command-line tools."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input or options, shown as one clear line (no traceback)."""


class FrameSizeError(UserError):
    """The frames of one video or frame folder are not all of one size."""


def one_line(exc: UserError) -> str:
    """The message of ``exc`` as one line: a UserError raised in a PyTorch DataLoader
    worker comes back with the worker's whole traceback in its message, ending in the
    original ``module.UserError: message`` line."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    found = re.match(r"[\w.]+: (.*)", last)
    return found.group(1) if found else last


def unknown_device(name: str) -> UserError:
    """The error for a device name that is none of those the tools take."""
    return UserError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)")


def invalid_yaml(what: str, path: object, exc: Exception) -> UserError:
    """The error for a YAML file PyYAML cannot parse, in one line: where (line, column)
    and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["unreadable"])[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem
    return UserError(f"{what} {path} is not valid YAML ({where})")


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
