"""The commands' argument parser: a bad argument is one ``error:`` line and exit 2, as
every other mistake is, instead of argparse's usage block."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .messages import did_you_mean


class OneLineParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` whose errors are one line naming ``--help``."""

    # what to add to "unrecognized arguments" (a command that takes one input and one
    # output can say how to give many)
    extra_arguments_hint = ""

    def error(self, message: str) -> NoReturn:
        extra = message.partition("unrecognized arguments:")[2].split()
        unknown = [w.partition("=")[0] for w in extra if w.startswith("--")]
        hint = ""
        if unknown:  # a mistyped option, named with the nearest real one
            message = f"unknown option {unknown[0]}{self._nearest(unknown[0])}"
        elif any(not w.startswith("-") for w in extra):  # a word that is no option
            hint = self.extra_arguments_hint
        sys.stderr.write(f"error: {message}{hint} ({self.prog} --help lists the options)\n")
        sys.exit(2)

    def _nearest(self, option: str) -> str:
        """`` (did you mean --x?)`` for the option most like ``option``, or nothing."""
        parsers = [self, *(sub for action in self._actions
                           if isinstance(action, argparse._SubParsersAction)
                           for sub in action.choices.values())]  # a mode's own options
        return did_you_mean(option, {name for parser in parsers
                                     for name in parser._option_string_actions
                                     if name.startswith("--")})


def _above_zero(text: str, what: str, unit: str) -> float:
    """``text`` as a finite number above 0 (NaN and infinity refused), or an
    ``ArgumentTypeError`` naming ``what`` it should be."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be {unit}above 0, not {text}")
    return value


def positive_number(text: str) -> float:
    """An ``argparse`` type: a finite number above 0."""
    return _above_zero(text, "a number", "a number ")


def positive_seconds(text: str) -> float:
    """An ``argparse`` type: a time in seconds above 0."""
    return _above_zero(text, "seconds", "")


def _whole_number_from(text: str, least: int) -> int:
    """``text`` as a whole number of ``least`` or more, or an ``ArgumentTypeError``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def at_least_one(text: str) -> int:
    """An ``argparse`` type: a whole number of 1 or more."""
    return _whole_number_from(text, 1)


def zero_or_more(text: str) -> int:
    """An ``argparse`` type: a whole number of 0 or more."""
    return _whole_number_from(text, 0)
