"""Files made in a hidden folder inside their output folder and moved into place together.

An image sequence's frames are made one by one but must appear all at once: a run stopped
half way, or one frame that cannot be moved in, leaves the output folder as it was. The
hidden folder is locked by the run that makes it, so a later run can tell one left by a
killed run (removed) from one still in use (left alone).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import UserError
from ..safe_output import try_lock

__all__ = ["StagedFolder"]

log = logging.getLogger("refdeblur_video")

_PREFIX = ".refdeblur-"  # then the process id, a random part and ".part"
_STAGED = re.compile(re.escape(_PREFIX) + r"\d+-\w+\.part")
_LOCK = ".lock"
_REPLACED = "replaced"  # the files a commit replaces, kept until every file is in
_YOUNG_S = 60.0  # a folder without its lock yet may be a run's that is just starting


class StagedFolder:
    """``with StagedFolder(outdir) as staged:`` make files in ``staged.path``, then
    :meth:`commit` them; the hidden folder goes however the block ends (kept only where a
    failed commit could not put a replaced file back), and so does ``outdir`` where this
    made it and nothing came of it."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.path = outdir  # set on entry
        self._lock: int | None = None
        self._made: list[Path] = []
        self._keep = False

    def __enter__(self) -> StagedFolder:
        self._made = [p for p in (self.outdir, *self.outdir.parents) if not p.exists()]
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            _clear_stale(self.outdir)
            self.path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-",
                                              suffix=".part", dir=self.outdir))
            self._lock = try_lock(self.path / _LOCK)
        except OSError as exc:
            self._remove()
            raise UserError(f"cannot write in the output folder {self.outdir} "
                            f"({exc.strerror or exc})") from exc
        return self

    def __exit__(self, *exc_info) -> None:
        self._remove()

    def _remove(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self.path != self.outdir and not self._keep:
            shutil.rmtree(self.path, ignore_errors=True)
        for folder in self._made:  # innermost first; only while empty
            with contextlib.suppress(OSError):
                folder.rmdir()

    def commit(self, targets: dict[str, Path], overwrite: bool) -> None:
        """Move each made file (by its name here) to its target, the files replaced kept
        aside until all are in. Where one cannot be moved, or a target appeared meanwhile
        (without ``overwrite``), those moved are taken back and the replaced ones put
        back: one :class:`UserError`, the output folder as it was."""
        replaced = self.path / _REPLACED
        replaced.mkdir()
        done: list[tuple[str, Path, bool]] = []  # moved in, and whether it replaced a file
        try:
            for name, target in targets.items():
                if target.is_dir() and not target.is_symlink():
                    raise IsADirectoryError(errno.EISDIR, "a folder has its name", str(target))
                had = target.exists() or target.is_symlink()
                if had and not overwrite:
                    raise UserError(f"{target} appeared while the sequence was being made; "
                                    "nothing was replaced")
                if had:
                    os.replace(target, replaced / name)
                done.append((name, target, had))
                os.replace(self.path / name, target)
        except (OSError, UserError) as exc:
            left = self._take_back(done, replaced)
            if isinstance(exc, UserError) and not left:
                raise
            why = exc if isinstance(exc, UserError) else (
                f"cannot write {getattr(exc, 'filename', None) or target} "
                f"({exc.strerror or exc})")
            if left:  # never deleted: the only copy of what the user had
                self._keep = True
                raise UserError(f"{why}; {left} replaced file(s) could not be put back: "
                                f"they are in {replaced}") from exc
            raise UserError(f"{why}: nothing was written") from exc

    def _take_back(self, done: list[tuple[str, Path, bool]], replaced: Path) -> int:
        """Undo a commit's moves; the number of replaced files that could not be put back."""
        left = 0
        for name, target, had in reversed(done):
            if not (self.path / name).exists():  # the made file went in
                with contextlib.suppress(OSError):
                    target.unlink()
            if had:
                try:
                    os.replace(replaced / name, target)
                except OSError:
                    left += 1
        return left


def _clear_stale(outdir: Path) -> None:
    """Remove the hidden folders in ``outdir`` of runs that ended without removing theirs
    (killed outright): their lock is free. A live run's is left alone, and one holding
    files a commit had replaced is kept and named."""
    for entry in outdir.iterdir():
        if not _STAGED.fullmatch(entry.name) or not entry.is_dir() or entry.is_symlink():
            continue
        lock_path = entry / _LOCK
        if not lock_path.exists():
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > _YOUNG_S:
                    shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            lock = try_lock(lock_path)
        except OSError:
            continue
        if lock is None:  # held: a live run's
            continue
        try:
            kept = entry / _REPLACED
            if kept.is_dir() and any(kept.iterdir()):
                log.warning("%s holds files a stopped run had taken out of %s to replace "
                            "them; move back those you want", kept, outdir)
            else:
                shutil.rmtree(entry, ignore_errors=True)
        finally:
            os.close(lock)
