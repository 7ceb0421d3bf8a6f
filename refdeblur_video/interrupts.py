"""Signals that stop a run: Ctrl-C (SIGINT), SIGTERM and SIGHUP are all handled alike.

The command line installs :func:`handle_signals`: the first of these signals raises
:class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, where the pipeline encodes
and commits its work, so the run unwinds as after Ctrl-C: the temporary output is removed and
the finished segments stay for ``--resume``. Later signals are ignored while it unwinds, and a
signal that was ignored when the command started (``nohup``, a background job) stays ignored.

Signals never interrupt a commit of finished work (:func:`deferred`: raised once it is
done) nor the last steps of a run that is finishing (:func:`finishing`: ignored, the run
completes).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

__all__ = ["Interrupted", "deferred", "exit_after", "finishing", "handle_signals", "settle"]

HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal. Every handled signal is treated as Ctrl-C, so
    ``exit_code`` is 130 for all of them (the one line printed names the signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + signal.SIGINT

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class _State:
    installed = False
    fired = False  # an Interrupted was raised: the run is unwinding
    deferring = 0  # nesting depth of deferred()
    pending: int | None = None  # a signal that arrived while deferring
    ignoring = False  # finishing(): the run completes whatever arrives
    parked: tuple[int, ...] = ()  # set to SIG_IGN by handle_signals(then_ignore=True)


def _handler(signum: int, frame: object) -> None:
    if _State.fired or _State.ignoring:
        return
    if _State.deferring:
        _State.pending = _State.pending or signum
        return
    _State.fired = True
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals(*, then_ignore: bool = False) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`Interrupted` while the block runs (main
    thread only; the previous handlers come back afterwards). ``then_ignore``: the process
    exits after the block, so the signals are ignored from then on instead (until
    :func:`exit_after` takes them): one arriving while the interpreter shuts down would
    otherwise end a finished run with status 130 and nothing said."""
    previous: dict[int, object] = {}
    for signum in HANDLED:
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN:
            continue
        previous[signum] = current
        signal.signal(signum, _handler)
    _State.installed, _State.fired, _State.pending = True, False, None
    _State.ignoring = False
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if then_ignore else handler)
        _State.parked = tuple(previous) if then_ignore else ()
        _State.installed = False
        _State.ignoring = False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal that arrives inside the block and raise it when the block ends
    normally (so that a commit is never cut in half)."""
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
    if not _State.deferring and _State.pending is not None and not _State.fired:
        signum, _State.pending = _State.pending, None
        _State.fired = True
        raise Interrupted(signum)


@contextlib.contextmanager
def finishing() -> Iterator[Callable[[], None]]:
    """Yield ``start``: from its call to the end of the block, signals are ignored (the
    output is complete; renaming it and removing the run's state take a moment)."""

    def start() -> None:
        _State.ignoring = _State.installed

    try:
        yield start
    finally:
        _State.ignoring = False


def settle() -> None:
    """Every file of the run is done: from now on signals are ignored until
    :func:`handle_signals` ends (a launcher stopping the process as it exits cuts nothing off
    and makes it print nothing)."""
    _State.ignoring = _State.installed


def exit_after(main: Callable[..., int]) -> NoReturn:
    """A program's entry point: run ``main(exiting=True)`` and exit with its status.

    While the interpreter shuts down (threads joined, exit handlers run) a signal ends the
    process at once with that same status: a finished run never reads as interrupted, and
    a shutdown that hangs can still be stopped. From the last exit handler on the signals
    are ignored: past it the interpreter resets Python-level handlers to the default, under
    which a late Ctrl-C would kill the finished run with status 130 and nothing said."""
    status = main(exiting=True)

    def leave(signum: int, frame: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    for signum in _State.parked:  # those the run handled (not those ignored from the start)
        signal.signal(signum, leave)
    sys.exit(status)


def _ignore_parked_signals() -> None:
    for signum in _State.parked:
        signal.signal(signum, signal.SIG_IGN)


# registered when the command line imports this module, before PyTorch or PyAV register
# theirs: exit handlers run last-registered first, so this one runs after them
atexit.register(_ignore_parked_signals)
