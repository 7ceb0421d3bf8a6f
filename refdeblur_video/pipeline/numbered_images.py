"""Numbered images as an output (``frames/%06d.png``): what names them, and what a run
writing a video into them would refuse. The pattern is read as FFmpeg reads an image
sequence's (``%d``, ``%06d``, ``%6d`` zero-padded too, ``%%`` a ``%`` sign). Light: the
command checks it before PyTorch and the codecs load."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UserError
from .options import DeblurOptions

__all__ = ["check_frames_output", "existing_frames", "frame_name",
           "frame_names", "has_frame_number", "is_frame_pattern"]

# a frame number as FFmpeg's image sequences write it: %d, or %Nd / %0Nd (N digits,
# zero-padded either way, as FFmpeg pads); %% is a % sign
_SPEC = re.compile(r"%%|%0*([1-9][0-9]*)?d")


def _numbers(name: str) -> list[re.Match]:
    """The frame-number specifications in ``name`` (``%%`` left out)."""
    return [m for m in _SPEC.finditer(name) if m.group(0) != "%%"]


def has_frame_number(name: str) -> bool:
    """Whether the file or folder ``name`` holds a frame number (``%d``, ``%06d``)."""
    return bool(_numbers(name))


def is_frame_pattern(output: str | os.PathLike) -> bool:
    """Whether ``output`` names numbered images: a file name with a frame number, or an
    image's name with a ``%`` (a frame number mistyped, refused by
    :func:`check_frames_output`)."""
    from ..image_files import IMAGE_SUFFIXES  # OpenCV: only once the paths are checked

    name = Path(output).name
    return bool(_numbers(name)) or ("%" in name and Path(name).suffix.lower() in IMAGE_SUFFIXES)


def _split(name: str) -> tuple[str, int, str]:
    """``name``'s text before its frame number, the number's width and the text after
    (``%%`` made ``%``)."""
    spec = _numbers(name)[0]
    width = int(spec.group(1) or 0)
    return (name[:spec.start()].replace("%%", "%"), width,
            name[spec.end():].replace("%%", "%"))


def frame_name(output: str | os.PathLike, index: int) -> str:
    """The file name of frame ``index`` under the pattern ``output``."""
    head, width, tail = _split(Path(output).name)
    return f"{head}{str(index).zfill(width)}{tail}"


def frame_names(output: str | os.PathLike, count: int) -> list[str]:
    """The file names of frames 0 to ``count - 1`` under the pattern ``output``."""
    return [frame_name(output, index) for index in range(count)]


def existing_frames(output: Path) -> list[Path]:
    """The files in ``output``'s folder that its pattern could have written (an earlier
    run's frames)."""
    head, width, tail = _split(output.name)
    # a number of exactly ``width`` digits, or a longer one without a leading zero
    number = r"(?:0|[1-9][0-9]*)" if width <= 1 else rf"(?:[0-9]{{{width}}}|[1-9][0-9]{{{width},}})"
    named = re.compile(re.escape(head) + number + re.escape(tail))
    folder = output.parent
    if not folder.is_dir():
        return []
    try:
        return sorted(path for path in folder.iterdir() if named.fullmatch(path.name))
    except OSError as exc:
        raise UserError(f"cannot read the output folder {folder} "
                        f"({exc.strerror or exc})") from exc


def check_frames_output(input: str | os.PathLike, output: str | os.PathLike,
                        opts: DeblurOptions) -> list[Path]:
    """Everything a run writing the video ``input`` as the numbered images ``output``
    would refuse, before the network loads; the images of an earlier run already there
    (:func:`existing_frames`, which ``--overwrite`` replaces)."""
    from ..image_files import IMAGE_SUFFIXES, is_image_path
    from ..safe_output import check_save_path, check_writable_file
    from .preflight import (
        check_input_file,
        check_log,
        check_reference,
        is_sequence,
        names_many,
        refuse_torchrun,
    )

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        what = f"not {suffix}" if suffix else "give one"
        raise UserError(f"{output}: numbered images are written as "
                        f"{', '.join(IMAGE_SUFFIXES)} ({what}); a video is one file, named "
                        "without a frame number")
    if len(_numbers(output.name)) != 1 or "%" in _SPEC.sub("", output.name):
        raise UserError(f"{output}: numbered images take one frame number in their name, "
                        "%d or %0Nd (N digits, zero-padded; %% for a % sign): e.g. "
                        "frames/%06d.png")
    if _numbers(str(output.parent)):
        raise UserError(f"{output}: the frame number goes in the file name, not in the "
                        "folder's")
    if is_sequence(input):
        raise UserError("an image sequence is written under its own file names: give the "
                        f"output folder ({output.parent}) rather than numbered names")
    if names_many(input):
        raise UserError("numbered images are written from one video; a folder or glob is "
                        "restored into an output folder")
    if is_image_path(input):
        raise UserError(f"{input} is a photo: it is restored into one image (name it, e.g. "
                        f"out{Path(input).suffix})")
    check_input_file(input)
    refuse_torchrun("a video written as images")
    folder = output.parent
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file: numbered images are written into a folder")
    existing = existing_frames(output)
    folders = [path for path in existing if path.is_dir()]
    if folders:
        raise UserError(f"{folders[0]} is a folder: a frame would be written under its name; "
                        "move it or choose another output folder")
    if existing and not opts.overwrite:
        raise UserError(f"{folder} already holds {len(existing)} images named as "
                        f"{output.name} ({existing[0].name}"
                        f"{', ...' if len(existing) > 1 else ''}); --overwrite replaces them")
    if folder.is_dir():  # a folder the run would make is checked as it is made
        check_writable_file(folder / frame_name(output, 0), "output")
    check_reference(opts.ref)
    check_log(opts.log, opts.overwrite)
    check_save_path(opts.save_adapted, opts.overwrite)
    return existing
