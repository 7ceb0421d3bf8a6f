"""Numbered images as an output (``frames/%06d.png``): what names them, and what a run
writing a video into them would refuse. Light: the command checks them before PyTorch and
the codecs load."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UserError
from .options import DeblurOptions

__all__ = ["check_frames_output", "existing_frames", "frame_names", "is_frame_pattern"]

# a frame number as FFmpeg's image sequences write it: %d, or %0Nd (N digits, zero-padded)
_NUMBER = re.compile(r"%(0[1-9][0-9]*)?d")


def is_frame_pattern(output: str | os.PathLike) -> bool:
    """Whether ``output`` names numbered images (an image file name with a ``%``)."""
    name = Path(output).name
    if "%" not in name:
        return False
    from ..image_files import IMAGE_SUFFIXES  # OpenCV: only for a name that may be one

    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def frame_names(output: str | os.PathLike, count: int) -> list[str]:
    """The file names of frames 0 to ``count - 1`` under the pattern ``output``."""
    name = Path(output).name
    return [name % index for index in range(count)]


def existing_frames(output: Path) -> list[Path]:
    """The files in ``output``'s folder that its pattern names (an earlier run's frames)."""
    head, _, tail = Path(output).name.partition(_NUMBER.search(output.name).group(0))
    named = re.compile(re.escape(head) + r"[0-9]+" + re.escape(tail))
    folder = output.parent
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if named.fullmatch(path.name))


def check_frames_output(input: str | os.PathLike, output: str | os.PathLike,
                        opts: DeblurOptions) -> None:
    """Everything a run writing the video ``input`` as the numbered images ``output``
    would refuse, before the network loads."""
    from ..image_files import is_image_path
    from ..safe_output import check_save_path, check_writable_file
    from .preflight import check_input_file, check_log, check_reference, is_sequence, names_many

    output = Path(output)
    if len(_NUMBER.findall(output.name)) != 1 or output.name.count("%") != 1:
        raise UserError(f"{output}: numbered images take one frame number in their name, "
                        "%d or %0Nd (N digits, zero-padded): e.g. frames/%06d.png")
    if is_sequence(input):
        raise UserError("an image sequence is written under its own file names: give the "
                        f"output folder ({output.parent}) rather than numbered names")
    if names_many(input):
        raise UserError("many videos are restored into an output folder, each as a video; "
                        "write one video's frames at a time")
    if is_image_path(input):
        raise UserError(f"{input} is a photo: it is restored into one image (name it, e.g. "
                        f"out{Path(input).suffix})")
    check_input_file(input)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every process would write them all
        raise UserError("a video written as images is one job: run it without torchrun")
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
        check_writable_file(folder / frame_names(output, 1)[0], "output")
    check_reference(opts.ref)
    check_log(opts.log, opts.overwrite)
    check_save_path(opts.save_adapted, opts.overwrite)
