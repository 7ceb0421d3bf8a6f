"""Checks of paths, containers and options made before anything slow is loaded.

A mistake in the command line is reported at once: the path checks need only the standard
library, the container check imports PyAV, and nothing here imports PyTorch or the model.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import UserError, invalid_yaml, unknown_device
from ..messages import counted
from ..package_files import MODEL_CONFIGS, PACKAGE_WEIGHTS
from ..safe_output import (
    check_not_same_file,
    check_output_path,
    check_save_path,
    check_writable_file,
)
from ..video.containers import CONTAINERS
from .options import DeblurOptions

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# what a folder of videos is taken to hold (a camera card, a phone, an old camcorder, the
# web); any other file there is left alone, since folders of footage hold other files
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mts", ".m2ts", ".ts",
                  ".mpg", ".mpeg", ".vob", ".3gp", ".3g2", ".flv", ".wmv", ".asf", ".mxf",
                  ".ogv", ".dv")
# the suffixes the writer can write
WRITABLE_SUFFIXES = tuple(CONTAINERS)
# what an input of another container (AVI) becomes among many: Matroska holds nearly any
# codec and sound
FALLBACK_SUFFIX = ".mkv"

__all__ = ["VIDEO_SUFFIXES", "WRITABLE_SUFFIXES", "check_outdir", "check_sequence",
           "check_single", "expand_inputs", "is_many", "is_sequence", "output_name",
           "per_file_logs", "preflight"]


def output_name(source: Path) -> str:
    """The name an input of many gets in the output folder: its own, or, where the tool
    cannot write its container (AVI), its stem as ``FALLBACK_SUFFIX``."""
    if source.suffix.lower() in WRITABLE_SUFFIXES:
        return source.name
    return source.stem + FALLBACK_SUFFIX


def names_many(input: str | os.PathLike) -> bool:
    """Whether ``input`` names many files: a folder, or a glob. A file that exists is one
    file, whatever its name holds (``Title [id].mp4``)."""
    text = str(input)
    return Path(text).is_dir() or (not Path(text).is_file() and any(c in text for c in "*?["))


def is_many(input: str | os.PathLike, output: str | os.PathLike) -> bool:
    """Whether ``input``/``output`` name many files: a folder or glob in
    (:func:`names_many`), a folder out."""
    return names_many(input) or str(output).endswith(os.sep) or Path(output).is_dir()


def expand_inputs(pattern: str, say: bool = False,
                  outdir: str | os.PathLike | None = None) -> list[Path]:
    """Video files of a folder, or of a glob pattern, in sorted order; hidden files (a
    camera card's ``._*`` companions among them) are left out of a folder, as a glob
    leaves them out. ``say``: warn once of a folder's photos and of its subfolders that
    hold videos (``outdir`` aside), which are left alone."""
    path = Path(pattern)
    if path.is_file():
        files = [path] if path.suffix.lower() in VIDEO_SUFFIXES else []
    elif path.is_dir():
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        files = [p for p in entries if p.suffix.lower() in VIDEO_SUFFIXES]
        if say:
            _say_photos_passed_over(path, entries)
    else:
        files = [Path(p) for p in glob.glob(pattern, recursive=True)  # '**' for subfolders
                 if Path(p).suffix.lower() in VIDEO_SUFFIXES]
    files = sorted(p for p in files if p.is_file())
    # listed only where said: a run expands its inputs twice (preflight, then the run)
    nested = [(sub, suffix) for sub, suffix in
              (_subfolders_with_videos(path) if path.is_dir() and (say or not files) else [])
              if outdir is None or not _same_folder(sub, Path(outdir))]
    # a glob over the subfolders would take the outputs too where they are written inside
    inside = outdir is not None and Path(outdir).resolve().is_relative_to(path.resolve())
    if not files:
        why = [_not_searched(path, nested, inside)] if nested else []
        images = (_photos_in(entries) if path.is_dir() else
                  _photos_in([Path(p) for p in glob.glob(pattern, recursive=True)]))
        if images:  # a glob of images: their folder is an image sequence
            why.append(f"it names {counted(len(images), 'image')}: a folder of images is "
                       "restored as one image sequence, given as the folder, and a photo "
                       "alone as refdeblur-video PHOTO OUT.png --ref SHARP.jpg")
        nor = ""
        if path.is_dir() and not images and not nested:  # frames in a format not read
            from ..image_files import IMAGE_SUFFIXES

            nor = (f" nor images ({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}, an "
                   "image sequence)")
        raise UserError(f"no video files{nor} found in {pattern}"
                        + (f" ({'; '.join(why)})" if why else ""))
    if say and nested:
        log.warning("%s: %s", path, _not_searched(path, nested, inside))
    return files


def _subfolders_with_videos(folder: Path) -> list[tuple[Path, str]]:
    """The visible subfolders of ``folder`` that hold video files themselves (one level down:
    a folder run does not search below its folder), each with its first video's suffix as
    it is spelled (a camera's ``.MP4``)."""
    found = []
    with contextlib.suppress(OSError):
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            with contextlib.suppress(OSError):
                suffix = next((f.suffix for f in sub.iterdir() if not f.name.startswith(".")
                               and f.suffix.lower() in VIDEO_SUFFIXES and f.is_file()), None)
                if suffix is not None:
                    found.append((sub, suffix))
    return found


def _not_searched(folder: Path, subfolders: list[tuple[Path, str]], outdir_inside: bool) -> str:
    """The words for videos in subfolders, which a folder run leaves alone: a quoted glob
    takes them (globs are case-sensitive: it names the suffix as the files spell it), except
    where the output folder lies inside, whose outputs it would take too."""
    names = ", ".join(p.name for p, _ in subfolders[:3]) + ", ..." * (len(subfolders) > 3)
    one = len(subfolders) == 1
    said = (f"subfolder{'' if one else 's'} {names} hold{'s' if one else ''} videos, but "
            "subfolders are not searched: give each folder as its own run")
    if outdir_inside:
        return said
    return f"{said}, or a quoted glob such as '{folder / '**' / ('*' + subfolders[0][1])}'"


def _say_photos_passed_over(folder: Path, entries: list[Path]) -> None:
    """One warning for the photos of a folder of videos, which folder mode leaves alone:
    a photo needs its own output name, and its reference, given alone."""
    photos = _photos_in(entries)
    if photos:
        log.warning("%s: %d photo%s (%s%s) left alone: a folder run restores videos; give "
                    "a photo alone (refdeblur-video PHOTO OUT.png)", folder, len(photos),
                    "s" * (len(photos) > 1), photos[0].name, ", ..." * (len(photos) > 1))


def _photos_in(entries: list[Path]) -> list[Path]:
    """The photos among a folder's ``entries``, sorted."""
    from ..image_files import IMAGE_SUFFIXES  # OpenCV: only for a folder

    return sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _same_folder(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def check_outdir(files: list[Path], outdir: str | os.PathLike) -> None:
    """Refuse an output folder that is a file, or that holds any of the input ``files``
    (each output takes its input's name there, :func:`output_name`), and inputs that
    would be written under one name."""
    from .numbered_images import has_frame_number

    named, outdir = str(outdir), Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"output {outdir} is a file; give a folder for many inputs")
    if has_frame_number(outdir.name) and not outdir.exists():
        raise UserError(f"numbered images ({outdir.name}) are written from one video; many "
                        "videos are restored into an output folder, each as a video")
    if (not outdir.exists() and outdir.suffix.lower() in VIDEO_SUFFIXES
            and not named.endswith(os.sep)):  # a typo, most likely: not a folder to make
        raise UserError(f"output {outdir} names a video file, but the input is many videos: "
                        f"give a folder (end it with {os.sep} to make one by that name)")
    _refuse_clashes([f"{first} and {source} would both be written as "
                     f"{output_name(source)}"
                     for first, source in _sharing(files, lambda p: output_name(p).lower())])
    if not outdir.exists():
        return
    for source in files:
        if _same_folder(source.parent, outdir):
            raise UserError(f"output folder {outdir} holds the input videos: the outputs would "
                            "replace them; choose another folder")


def check_input_file(path: str | os.PathLike) -> None:
    """Refuse a missing input, a folder where a file is needed, and a pipe."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.is_dir():
        raise UserError(f"input is a folder, not a file: {path}")
    if not path.is_file():  # a pipe, a FIFO, a device: the video is read more than once
        raise UserError(f"input {path} is not a regular file (a pipe or device?): the video "
                        "is read more than once, so save it to a file first")


def check_reference(ref: str | os.PathLike | None) -> None:
    """Refuse a ``--ref`` image that is not there, saying it is the reference."""
    if ref is not None and not Path(ref).is_file():
        what = "is a folder" if Path(ref).is_dir() else "not found"
        raise UserError(f"reference image (--ref) {what}: {ref}")


def check_log(log: str | os.PathLike | None, overwrite: bool = False) -> None:
    """Refuse a ``--log`` that could not be written (it is written after the whole run, too
    late to say so in one line), or that exists, unless ``overwrite``: an earlier run's
    log is kept as its output is."""
    if log is None:
        return
    if Path(log).exists() and not overwrite and not Path(log).is_dir():
        raise UserError(f"--log {log} already exists (use --overwrite to replace it)")
    check_writable_file(log, "--log")


def check_single(input: str | os.PathLike, output: str | os.PathLike,
                 options: DeblurOptions) -> None:
    """The checks of one input file (or an image sequence made into a video) and its
    output, cheapest first."""
    sequence = is_sequence(input)
    if sequence:
        _check_sequence_job(options)
        if _same_folder(Path(output).parent, Path(input)):  # a video among its images
            raise UserError(f"{output} would be written into the image sequence's own "
                            "folder, which would then hold a video and be taken for a folder "
                            "of videos; write it elsewhere")
    else:
        check_input_file(input)
        from ..image_files import is_image_path  # OpenCV: only once the input is there
        from .numbered_images import has_frame_number

        if is_image_path(input) and has_frame_number(Path(output).name):
            raise UserError(f"{input} is a photo: it is restored into one image (name it "
                            f"without a frame number, e.g. out{Path(input).suffix})")
    check_not_same_file(input, output)
    if options.resume and not options.overwrite and Path(output).is_file():
        raise UserError(f"output {output} already exists: that run finished (--resume goes on "
                        "with an interrupted one; --overwrite makes it again)")
    check_output_path(output, options.overwrite)
    check_reference(options.ref)
    if options.ref is not None:
        check_not_same_file(options.ref, output, "--ref")
    check_log(options.log, options.overwrite)
    # before the model loads (seconds); a resumed run may have written its file already
    check_save_path(options.save_adapted, options.overwrite or options.resume)
    from ..image_files import IMAGE_SUFFIXES, is_image_path  # OpenCV: after the path checks

    if sequence:
        from ..image_files import list_images

        _check_sizes(Path(input), list_images(input))
    elif is_image_path(input):
        if not is_image_path(output):
            raise UserError(f"output {output} must be an image file (.png, .jpg, .tif, ...)")
        return
    if is_image_path(output):  # an image out of what is no image the tool reads
        raise UserError(f"output {output} is an image, but {input} is none of the images the "
                        f"tool reads ({', '.join(IMAGE_SUFFIXES)}); a video needs a video "
                        f"output, or numbered images ({Path(output).parent / '%06d'}"
                        f"{Path(output).suffix})")
    from ..video.encoding_choice import container_for  # PyAV: after the path checks

    container_for(output)


def check_per_file_names(files: list[Path], options: DeblurOptions) -> None:
    """Among many inputs, each gets its own ``--log`` and ``--save-adapted`` file, named by
    its stem: refuse two inputs whose stems would share one, and a ``--save-adapted`` that
    names one file rather than the folder for them."""
    if options.save_adapted and Path(options.save_adapted).suffix == ".safetensors":
        raise UserError("with many inputs, --save-adapted names a folder (one file per video)")
    kinds = [what for what, given in (("frame log", options.log),
                                      ("adapted weights file", options.save_adapted)) if given]
    if not kinds:
        return
    _refuse_clashes([f"{first.name} and {source.name} would share one "
                     f"{' and one '.join(kinds)} (named {source.stem}.*)"
                     for first, source in _sharing(files, lambda p: p.stem.lower())])


def per_file_logs(files: list[Path], log: str | None, outdir: Path) -> dict[Path, str | None]:
    """Each of many files' frame log: ``<stem>.<suffix>`` of ``--log`` in the folder it
    names (``logs/f.csv``), else in the output folder (``f.csv``); None without ``--log``."""
    if not log:
        return {source: None for source in files}
    folder = Path(log).parent
    if folder == Path("."):
        folder = outdir
    elif not folder.is_dir():
        raise UserError(f"--log: folder not found: {folder}")
    return {source: str(folder / f"{source.stem}{Path(log).suffix}") for source in files}


def _sharing(files: list[Path], key: Callable[[Path], str]) -> list[tuple[Path, Path]]:
    """Each file whose ``key`` an earlier one has, with that earlier one."""
    first: dict[str, Path] = {}
    pairs = []
    for source in files:
        earlier = first.setdefault(key(source), source)
        if earlier is not source:
            pairs.append((earlier, source))
    return pairs


def _refuse_clashes(clashes: list[str]) -> None:
    """Every name clash at once, not one a run."""
    if clashes:
        raise UserError(f"{'; '.join(clashes)}; give them different names")


def check_reader(name: str) -> None:
    """Refuse ``--reader decord`` where decord is not installed (found without importing
    it)."""
    import importlib.util

    if name == "decord" and importlib.util.find_spec("decord") is None:
        raise UserError("the decord reader is not installed (pip install decord); use "
                        "--reader pyav")


def check_device(name: str) -> None:
    """Refuse a device name of no known form (whether it exists needs PyTorch: later)."""
    if not re.fullmatch(r"auto|(cpu|mps|cuda)(:\d+)?", name):
        raise unknown_device(name)


def check_model(spec: str) -> None:
    """Refuse a model file that is missing, a model YAML that does not parse, and a
    shipped model name with no trained weights installed (``paper``: it would return its
    input unchanged); what the files hold is checked when the model loads. A YAML of one's
    own stays allowed untrained (a pipeline check: frames come back as they were)."""
    path = Path(spec)
    name = "lite" if spec == "default" else spec
    if ((MODEL_CONFIGS / f"{name}.yaml").is_file()
            and not (PACKAGE_WEIGHTS / f"{name}.safetensors").is_file()):
        raise UserError(f"no trained weights are installed for the {name} model, so it "
                        f"cannot restore anything: pass its trained checkpoint (--model "
                        f"PATH.safetensors; refdeblur-train --config "
                        f"configs/train/{name}.yaml trains one)")
    shipped = spec == "default" or (MODEL_CONFIGS / f"{spec}.yaml").is_file()
    if path.is_dir() and not shipped:  # a training run's folder, most likely
        inside = [p.name for p in sorted(path.glob("*.safetensors"))
                  if p.name != "last.safetensors"]
        raise UserError(f"--model {path} is a folder: give a model file"
                        + (f" ({', '.join(inside)} there)" if inside else ""))
    if path.suffix.lower() not in (".safetensors", ".yaml", ".yml"):
        return
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    if path.suffix.lower() != ".safetensors":
        import yaml

        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise invalid_yaml("model config", path, exc) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read model config {path} ({exc})") from None


def preflight(input: str | os.PathLike, output: str | os.PathLike,
              options: DeblurOptions) -> None:
    """Check what can be checked before the model is loaded; raise :class:`UserError`."""
    if "-" in (str(input), str(output)):
        raise UserError("standard input or output (-) cannot be used: the video is read more "
                        "than once, and the output appears only once it is complete; give "
                        "file names")
    check_device(options.device)
    check_model(options.model)
    check_reader(options.reader)
    from .numbered_images import check_frames_output

    mode = route(input, output)
    if mode == "frames":
        check_frames_output(input, output, options)
    elif mode == "sequence":
        check_sequence(Path(input), Path(output), options)
    elif mode == "many":
        if Path(input).is_file() and Path(input).suffix.lower() not in VIDEO_SUFFIXES:
            raise UserError(f"output {output} is a folder, but the input is one file: name "
                            f"the output file (e.g. {Path(output) / Path(input).name})")
        check_reference(options.ref)
        files = expand_inputs(str(input), outdir=output)
        check_outdir(files, output)
        check_per_file_names(files, options)
    else:
        check_single(input, output, options)


def is_sequence(input: str | os.PathLike) -> bool:
    """Whether ``input`` is a folder of images and no videos: one image sequence."""
    folder = Path(input)
    if not folder.is_dir():
        return False
    try:
        names = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    except OSError:
        return False
    from ..image_files import IMAGE_SUFFIXES  # OpenCV: only for a folder

    return (not any(p.suffix.lower() in VIDEO_SUFFIXES for p in names)
            and any(p.suffix.lower() in IMAGE_SUFFIXES for p in names))


def say_subfolder_videos(folder: Path) -> None:
    """One warning where subfolders of an image sequence's ``folder`` hold videos: a
    sequence run leaves them alone (a folder of photos beside a folder of clips)."""
    nested = _subfolders_with_videos(folder)
    if nested:
        names = ", ".join(p.name for p, _ in nested[:3]) + ", ..." * (len(nested) > 3)
        log.warning("%s: its images are restored as one image sequence; the videos in %s "
                    "are left alone (give that folder as its own run)", folder, names)


#: the jobs an input and an output name (:func:`route`)
Mode = Literal["sequence", "sequence_video", "many", "photo", "frames", "video"]


def route(input: str | os.PathLike, output: str | os.PathLike | None) -> Mode:
    """Which job ``input`` and ``output`` name: an image sequence into a folder of images
    or into a video, many files into a folder, one photo, a video into numbered images
    (``frames/%06d.png``), or one video; the one place the run, its checks, its plan and
    its closing lines tell them apart."""
    from ..image_files import is_image_path  # OpenCV: only once the paths are checked
    from .numbered_images import is_frame_pattern

    if is_sequence(input):
        return "sequence_video" if output is not None and makes_video(output) else "sequence"
    if names_many(input) or (output is not None and is_many(input, output)):
        return "many"
    if is_image_path(input):
        return "photo"
    if output is not None and is_frame_pattern(output):
        return "frames"
    return "video"


def makes_video(output: str | os.PathLike) -> bool:
    """Whether ``output`` names a video file (an image sequence is made into one); a name
    that ends in a slash is a folder, whatever its suffix."""
    return (Path(output).suffix.lower() in VIDEO_SUFFIXES and not Path(output).is_dir()
            and not str(output).endswith(os.sep))


def say_if_fps_does_nothing(mode: Mode, opts: DeblurOptions) -> None:
    """Warn of a ``--fps`` given where no image sequence is made into a video (``mode``:
    the job, :func:`route`)."""
    if opts.fps is not None and mode != "sequence_video":
        log.warning("--fps does nothing here: it is the frame rate of an image sequence made "
                    "into a video (a video keeps its own timing)")


def refuse_torchrun(what: str) -> None:
    """Refuse a run of ``what`` under torchrun, whose every process would make it all."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError(f"{what} is one job: run it without torchrun")


def _check_sequence_job(opts: DeblurOptions) -> None:
    """What an image sequence's run, into images or a video, cannot do."""
    if opts.adapt:
        raise UserError("--adapt learns from a video's own frames: an image sequence is not "
                        "adapted to yet")
    refuse_torchrun("an image sequence")


def check_sequence(folder: Path, outdir: Path, opts: DeblurOptions) -> dict[Path, Path]:
    """Everything a run of the image sequence in ``folder`` would refuse, before the
    network loads; each frame's file (in natural order) with its output's."""
    from ..image_files import IMAGE_SUFFIXES, list_images  # OpenCV: only for a folder

    files = list_images(folder)
    _check_sequence_job(opts)
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"an image sequence is written as images into a folder: {outdir} "
                        "is a file; give a folder as the output")
    from .numbered_images import has_frame_number

    if has_frame_number(outdir.name) and not outdir.exists():
        raise UserError(f"an image sequence is written under its own file names: give the "
                        f"output folder ({outdir.parent}) rather than numbered names")
    if outdir.suffix.lower() in IMAGE_SUFFIXES and not outdir.exists():
        raise UserError(f"an image sequence is written as images into a folder, or into a "
                        f"video, not into one image ({outdir}); give a folder or a video")
    with contextlib.suppress(FileNotFoundError):
        if outdir.resolve() == folder.resolve() or os.path.samefile(outdir, folder):
            raise UserError(f"the output folder {outdir} is the input folder: the frames "
                            "would replace themselves; choose another output folder")
    clashes = _sharing(files, lambda path: path.name.casefold())
    if clashes:  # one file on a disk that ignores case (macOS, exFAT): a frame lost
        one, other = clashes[0]
        raise UserError(f"{one.name} and {other.name} in {folder} differ only in case: on "
                        "many disks they are one file; rename one")
    targets = {source: outdir / source.name for source in files}
    folders = [t for t in targets.values() if t.is_dir() and not t.is_symlink()]
    if folders:
        raise UserError(f"{folders[0]} is a folder: a frame of the sequence would be written "
                        "under its name; move it or choose another output folder")
    taken = [t for t in targets.values() if t.exists() or t.is_symlink()]
    if taken and not opts.overwrite:
        raise UserError(f"{outdir} already holds {len(taken)} of the sequence's "
                        f"{len(files)} file names ({taken[0].name}"
                        f"{', ...' if len(taken) > 1 else ''}); --overwrite replaces them")
    if outdir.is_dir():  # a folder the run would make is checked as it is made
        check_writable_file(outdir / files[0].name, "output")
    _check_sizes(folder, files)
    check_reference(opts.ref)
    check_log(opts.log, opts.overwrite)
    return targets


def _check_sizes(folder: Path, files: list[Path]) -> None:
    """Refuse frames of different sizes where their headers tell at once (PNG, JPEG): a
    long sequence would otherwise be found out only when the odd frame is reached."""
    from ..image_files import header_size

    first = None
    for path in files:
        size = header_size(path)
        if size is None:
            continue
        if first is None:
            first = path, size
        elif size != first[1]:
            raise UserError(unlike_frames(folder, first, (path, size)))


def unlike_frames(folder: Path, one: tuple[Path, np.ndarray | tuple[int, int]],
                  other: tuple[Path, np.ndarray | tuple[int, int]]) -> str:
    """The error for two frames of an image sequence that differ in size or bit depth; each
    given with its image, or its (width, height)."""
    def size(image) -> str:
        width, height = (image.shape[1], image.shape[0]) if hasattr(image, "shape") else image
        return f"{width}x{height}"

    def depth(image) -> str:
        return f"{8 * image.itemsize}-bit" if hasattr(image, "itemsize") else ""

    (a, a_image), (b, b_image) = one, other
    if size(a_image) != size(b_image):
        what = f"size: {a.name} is {size(a_image)}, {b.name} {size(b_image)}"
    else:
        what = f"bit depth: {a.name} is {depth(a_image)}, {b.name} {depth(b_image)}"
    return (f"the frames of {folder} differ in {what}: a folder of images is restored as "
            "one image sequence; restore photos of their own one at a time (refdeblur-video "
            "PHOTO OUT.png --ref SHARP.jpg)")


def not_made_from(source: Path, target: Path) -> str | None:
    """None where ``target`` can be the finished output of ``source`` (a video of its size,
    rotation and length: an earlier run's), else why not, as an error line. A folder's names
    repeat (IMG_0001.MOV from another day or phone): a video of another length is not done."""
    from ..video.metadata import probe  # PyAV: only where an output exists

    try:
        made = probe(target)
    except UserError:
        return f"output {target} exists but is no readable video: remove it, or use --overwrite"
    try:
        info = probe(source)
    except UserError as exc:  # the input's own trouble, as its run would say it
        return str(exc)
    differs = []
    # an odd size is padded by one pixel where the encoder needs even ones (4:2:0)
    padded = (info.width + info.width % 2, info.height + info.height % 2)
    if (made.width, made.height) not in ((info.width, info.height), padded):
        differs.append(f"size {made.width}x{made.height} in it, {info.width}x{info.height} "
                       "in the input")
    if made.rotation % 360 != info.rotation % 360:
        differs.append(f"rotation {made.rotation % 360} in it, {info.rotation % 360} in the "
                       "input")
    # a damaged input's header counts frames that never decode: some slack
    if (None not in (made.frame_count, info.frame_count)
            and abs(made.frame_count - info.frame_count) > max(2, info.frame_count // 100)):
        differs.append(f"frames {made.frame_count} in it, {info.frame_count} in the input")
    if None in (made.frame_count, info.frame_count) and None not in (made.duration_s,
                                                                     info.duration_s):
        # a container that does not count its frames (Matroska) still says how long it
        # lasts; the same slack (a last frame's duration is the muxer's guess)
        interval = float(1 / info.fps) if info.fps else 0.04
        if abs(made.duration_s - info.duration_s) > max(2 * interval + 1e-3,
                                                        info.duration_s / 100):
            differs.append(f"length {made.duration_s:.2f} s in it, {info.duration_s:.2f} s in "
                           "the input")
    if not differs:
        return None
    return (f"output {target} exists but is not made from {source} ({'; '.join(differs)}): "
            "remove it, or use --overwrite")
