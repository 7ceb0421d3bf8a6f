"""What libav logs while an encoder or muxer starts or finishes, captured instead of printed,
so that an error line can quote its complaint in one line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import av

__all__ = ["encoder_complaints", "last_complaint"]


def last_complaint(said: list) -> str | None:
    """The last error libav logged among ``said`` (:func:`encoder_complaints`), if any."""
    complaints = [m.strip() for level, _, m in said if level <= av.logging.ERROR and m.strip()]
    return complaints[-1] if complaints else None


@contextlib.contextmanager
def encoder_complaints() -> Iterator[list]:
    """Collect what libav logs while an encoder opens, (level, name, message) tuples,
    instead of letting it print to the terminal (a bad preset, say): the error line quotes
    it. libav's messages reach Python only while PyAV has a log level set."""
    before = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as said:
            yield said
    finally:
        av.logging.set_level(before)
