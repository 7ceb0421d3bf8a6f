"""Atomic output: nothing half-written is ever left under the output name or beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from refdeblur_video.errors import UserError
from refdeblur_video.safe_output import atomic_output, check_not_same_file


def test_success_renames_a_temp_file_with_the_same_suffix(tmp_path: Path):
    target = tmp_path / "out.mp4"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp != target
        assert not target.exists()
        tmp.write_bytes(b"video")
    assert target.read_bytes() == b"video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path):
    target = tmp_path / "out.mkv"
    target.write_bytes(b"old")
    with pytest.raises(UserError, match="already exists"), atomic_output(target):
        pass
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]


def test_missing_folder_and_folder_as_output_are_refused(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"), atomic_output(tmp_path / "no" / "o.mp4"):
        pass
    with pytest.raises(UserError, match="folder"), atomic_output(tmp_path):
        pass


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder_is_refused(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match="not writable"), atomic_output(locked / "o.mp4"):
            pass
    finally:
        locked.chmod(0o700)


def test_unwritable_folder_is_refused_even_for_root(tmp_path: Path, monkeypatch):
    """A read-only mount refuses root too: the probe file finds it, as permissions do not."""
    import errno

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("refdeblur_video.safe_output.tempfile.mkstemp", read_only)
    with pytest.raises(UserError, match=r"not writable \(Read-only file system\)"), \
            atomic_output(tmp_path / "o.mp4"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_the_writability_probe_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    from refdeblur_video.safe_output import check_writable_file

    monkeypatch.chdir(tmp_path)
    check_writable_file("o.mp4", "output")  # a file in the current folder
    check_writable_file(tmp_path / "o.mp4", "output")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_nothing_is_left_after_an_exception(tmp_path: Path, error: BaseException):
    target = tmp_path / "out.mp4"
    with pytest.raises(type(error)), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise error
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_the_previous_output_when_overwriting(tmp_path: Path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt), atomic_output(target, overwrite=True) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_same_file_is_refused(tmp_path: Path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    with pytest.raises(UserError, match="is the input"):
        check_not_same_file(src, tmp_path / "." / "in.mp4")
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    with pytest.raises(UserError):
        check_not_same_file(src, link)
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    with pytest.raises(UserError):
        check_not_same_file(src, hard)
    check_not_same_file(src, tmp_path / "other.mp4")  # fine


def test_errors_from_inside_name_the_output_not_the_temporary_file(tmp_path: Path):
    target = tmp_path / "out.xyz"
    with pytest.raises(UserError) as caught, atomic_output(target) as tmp:
        raise UserError(f"cannot tell the container of {tmp.name!r}; cannot create {tmp}")
    assert str(caught.value) == f"cannot tell the container of 'out.xyz'; cannot create {target}"
    assert list(tmp_path.iterdir()) == []
