"""Write outputs atomically: a temporary file beside the target, renamed only on success.

A crash, an error or Ctrl-C never leaves a half-written video under the output name, and the
temporary file is removed. The temporary name keeps the output's suffix so muxers that pick
the container from the file name (``.mp4``, ``.mkv``...) still do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock (two runs on one output are then the user's lookout)
    fcntl = None

from refdeblur_video.errors import UserError

__all__ = ["atomic_output", "check_not_same_file", "check_output_path", "check_save_path",
           "check_writable_file", "remove_stale_temps"]


#: an output that cannot be written for want of room or a working disk: one line, not a
#: traceback (the finished segments are kept for --resume where there were any)
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def try_lock(path: str | os.PathLike) -> int | None:
    """Open (making it) and lock the file ``path`` for this process: its descriptor, held
    until closed, or None where another process holds the lock (where the system or the
    disk has no locks, the lock is always had)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP):  # a disk without locks (NFS)
            return fd
        os.close(fd)
        raise
    return fd


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an existing output (unless ``overwrite``), a folder, or an unwritable location."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"output {target} is a folder; give a file name")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise UserError(f"output {target} already exists (use --overwrite to replace it)")
    check_writable_file(target, "output")
    return target


def check_writable_file(path: str | os.PathLike, name: str) -> None:
    """Refuse a file path that is a folder, or whose folder is missing or unwritable;
    ``name`` says which file in the message (``output``, ``--log``)."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{name} {target} is a folder; give a file name")
    folder = target.parent
    if not folder.is_dir():
        raise UserError(f"{name} folder {folder} does not exist")
    # permissions do not tell everything (root, a read-only mount, /sys): make a file there
    try:
        handle, probe = tempfile.mkstemp(prefix=".refdeblur-probe-", dir=folder)
    except OSError as exc:
        raise UserError(f"{name} folder {folder} is not writable "
                        f"({exc.strerror or exc})") from exc
    try:
        os.close(handle)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def check_save_path(path: str | None, overwrite: bool) -> None:
    """Refuse a ``--save-adapted`` path that cannot be written, before any work."""
    if path is None:
        return
    target = Path(path)
    if target.suffix != ".safetensors":
        raise UserError(f"--save-adapted must name a .safetensors file: {path}")
    if not target.parent.is_dir():
        raise UserError(f"--save-adapted: folder not found: {target.parent}")
    if target.exists() and not overwrite:
        raise UserError(f"--save-adapted: {path} exists (-y/--overwrite replaces it)")
    check_writable_file(target, "--save-adapted")


def check_not_same_file(input_path: str | os.PathLike, output_path: str | os.PathLike,
                        what: str = "input") -> None:
    """Refuse writing the output over the input, or another file the run reads (``what``
    names it): the same path, a link or a hard link."""
    src, dst = Path(input_path), Path(output_path)
    same = src.resolve() == dst.resolve()
    if not same and src.exists() and dst.exists():
        with contextlib.suppress(OSError):
            same = os.path.samefile(src, dst)
    if same:
        raise UserError(f"output {dst} is the {what} file; choose another output name")


def _temp_name(target: Path, token: str) -> str:
    return f".{target.stem}.{token}.part{target.suffix}"


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temporary files of ``path`` that a killed run left (SIGKILL, power loss);
    only for a caller that knows no other run is writing ``path``. Returns how many."""
    target = Path(path)
    head, tail = _temp_name(target, "\0").split("\0")
    pattern = re.compile(re.escape(head) + "[0-9a-f]{8}" + re.escape(tail))
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _create_temp(target: Path) -> Path:
    for _ in range(100):
        tmp = target.with_name(_temp_name(target, secrets.token_hex(4)))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"cannot write in {target.parent}: {exc.strerror}") from exc
        os.close(fd)
        return tmp
    raise UserError(f"cannot create a temporary file in {target.parent}")


def _named_for_user(exc: UserError, tmp: Path, target: Path) -> UserError:
    """``exc`` with the temporary file's path or name replaced by the user's output."""
    message = str(exc).replace(str(tmp), str(target)).replace(tmp.name, target.name)
    return exc if message == str(exc) else UserError(message)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary file exists (empty) when yielded and has the same suffix as ``path``. On any
    exception, KeyboardInterrupt included, it is deleted and the exception propagates. Raises
    UserError when ``path`` exists and ``overwrite`` is false, or its folder is missing or
    not writable. The existence check is repeated just before the rename. A UserError from
    inside names ``path``, never the temporary file.
    """
    target = check_output_path(path, overwrite)
    tmp = _create_temp(target)
    try:
        yield tmp
        if not overwrite and (target.exists() or target.is_symlink()):
            raise UserError(f"output {target} appeared while writing; not replacing it")
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, UserError):
            named = _named_for_user(exc, tmp, target)
            if named is not exc:
                raise named from exc
        raise
