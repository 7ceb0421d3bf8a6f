"""The commands' message lines on stderr: ``error: ...``, ``warning: ...``, above any
progress bar."""

from __future__ import annotations

import difflib
import logging
import sys
import warnings
from collections.abc import Iterable


def say(line: str) -> None:
    """Print one message line to stderr; above the progress bar, never on its line."""
    if "tqdm" in sys.modules:  # a bar can only be showing once tqdm is loaded
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the choice most like a mistyped ``word``, or nothing."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def counted(count: int, noun: str) -> str:
    """``1 frame``, ``2 frames``: a count with its noun, in the plural where it needs it."""
    return f"{count} {noun}{'s' * (count != 1)}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    say(f"warning: {message}")


class _LineHandler(logging.Handler):
    """Log records as ``warning: ...`` lines, the style of the command's own messages."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            say(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # logging's convention: report the failure, never raise
            self.handleError(record)


def route_messages() -> None:
    """Show warnings and log records of WARNING and above as the commands' own lines."""
    warnings.showwarning = _show_warning
    logging.basicConfig(level=logging.WARNING, handlers=[_LineHandler()])
