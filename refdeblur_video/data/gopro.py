"""GoPro-style layouts: read an existing one into a triplet manifest, or build one from a
high-frame-rate source.

Reading (:func:`gopro_triplets`): ``ROOT/{train,test}/<sequence>/{blur,blur_gamma,sharp}/*.png``
(GoPro_Large), or any folder holding a ``blur/`` and a ``sharp/`` (or ``gt/``) folder
(RealBlur-J style, HIDE once arranged so). Blurry and sharp files are paired by name, else by
the last number in the name (``blur_12.png`` <-> ``gt_12.png``). As in the paper (sec. 4.1),
the reference of blurry frame ``i`` is a *nearby* sharp frame ``j = i + d`` of the same
sequence, ``dmin <= |d| <= dmax``, never the ground truth itself.

Building (:func:`build_hfr_triplets`), from a high-frame-rate video or frame folder
(GoPro_Large_all style, 240 fps): blurry = mean of ``N`` consecutive frames in linear light
(``N`` odd in ``min_frames..max_frames``, drawn per sample), sharp = the middle frame,
reference = a frame ``ref_min..ref_max`` frames from the middle and outside the averaged
window. Output: ``OUT/<split>/<sequence>/{blur,sharp,ref}/<middle>.png`` plus
``OUT/manifest.jsonl``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refdeblur_video.data.manifest import MANIFEST_NAME, Triplet, write_manifest
from refdeblur_video.data.shake import from_linear, to_linear
from refdeblur_video.data.triplets import (
    check_offsets,
    choose_offset,
    split_val,
    stable_rng,
    unique_names,
)
from refdeblur_video.errors import UserError
from refdeblur_video.image_files import (
    IMAGE_SUFFIXES,
    image_size,
    list_images,
    natural_key,
    write_png,
)
from refdeblur_video.messages import counted
from refdeblur_video.video.sources import count_frames, iter_frames

log = logging.getLogger(__name__)

SHARP_DIRS = ("sharp", "gt", "GT")
_SPLIT_WORDS = {
    "train": "train", "training": "train",
    "test": "test", "testing": "test",
    "val": "val", "valid": "val", "validation": "val",
}


def split_from_path(parts: Iterable[str], default: str) -> str:
    """Split named by the nearest folder called train/test/val (and variants), else default."""
    for part in reversed(list(parts)):
        if part.lower() in _SPLIT_WORDS:
            return _SPLIT_WORDS[part.lower()]
    return default


@dataclass(frozen=True)
class PairedSequence:
    """One sequence of a paired layout: sharp frames in order, blurry frames by sharp index."""

    name: str
    split: str
    sharp: list[Path]
    blur: dict[int, Path]  # sharp index -> blurry file


def _last_number(name: str) -> int | None:
    numbers = re.findall(r"\d+", Path(name).stem)
    return int(numbers[-1]) if numbers else None


def _pair(blur_files: list[Path], sharp_files: list[Path]) -> tuple[dict[int, Path], int]:
    """Blurry files by the index of their sharp partner, and how many found none (a second
    blurry file for one partner is not counted: it is the first's twin)."""
    by_name = {p.name: k for k, p in enumerate(sharp_files)}
    by_number: dict[int, int] = {}
    for k, p in enumerate(sharp_files):
        number = _last_number(p.name)
        if number is not None:
            by_number.setdefault(number, k)
    pairs = {}
    unpaired = 0
    for b in blur_files:
        k = by_name.get(b.name)
        if k is None:
            number = _last_number(b.name)
            k = by_number.get(number) if number is not None else None
        if k is not None:
            pairs[k] = b
        else:
            unpaired += 1
    return pairs, unpaired


def scan_pairs(
    root: str | Path, blur_dir: str = "blur", default_split: str = "train"
) -> list[PairedSequence]:
    """All sequences under ``root`` with a ``blur_dir`` folder beside a sharp/gt folder."""
    root = Path(root)
    if root.is_file():
        raise UserError(f"{root} is a file: give the dataset's folder (ROOT/train/SEQ/blur, "
                        "sharp)")
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    found = []
    for folder, dirs, _files in os.walk(root):
        dirs.sort(key=natural_key)
        sharp_name = next((d for d in SHARP_DIRS if d in dirs), None)
        if blur_dir not in dirs or sharp_name is None:
            continue
        here = Path(folder)
        sharp = list_images(here / sharp_name)
        blurry = list_images(here / blur_dir)
        pairs, unpaired = _pair(blurry, sharp)
        _say_what_is_missing(here.relative_to(root), unpaired, sharp)
        if pairs:
            rel = here.relative_to(root)
            split = split_from_path((root.resolve().name, *rel.parts), default_split)
            found.append((rel, PairedSequence(here.name, split, sharp, pairs)))
        dirs[:] = [d for d in dirs if d not in (blur_dir, sharp_name)]
    if not found:
        raise UserError(
            f"no sequences with '{blur_dir}/' and '{'/'.join(SHARP_DIRS)}/' image folders "
            f"found under {root}"
        )
    names = [s.name for _, s in found]
    if len(set(names)) < len(names):  # same folder name twice: use relative paths
        return [PairedSequence(rel.as_posix(), s.split, s.sharp, s.blur) for rel, s in found]
    return [s for _, s in found]


def _say_what_is_missing(sequence: Path, unpaired: int, sharp: list[Path]) -> None:
    """Warn of blurry frames with no sharp partner (left out) and of sharp frames whose
    numbers skip (a reference offset counts the frames there are, not the numbers)."""
    if unpaired:
        log.warning("%s: %s without a sharp frame of the same name or number left out",
                    sequence, counted(unpaired, "blurry frame"))
    numbers = [_last_number(p.name) for p in sharp]
    steps = ({b - a for a, b in zip(numbers, numbers[1:], strict=False)}
             if None not in numbers else set())
    if len(steps) > 1 and numbers[-1] - numbers[0] + 1 > len(numbers):  # not a regular rate
        log.warning("%s: its sharp frames skip %s: a reference offset counts the frames "
                    "there are, so a reference may be farther than --dmax", sequence,
                    counted(numbers[-1] - numbers[0] + 1 - len(numbers), "number"))


def _carve_val(sequences: Sequence, val_sequences: Iterable[str], val_fraction: float,
               seed: int) -> set[str]:
    """Names of training sequences that become validation sequences."""
    train = [s.name for s in sequences if s.split == "train"]
    listed = set(val_sequences)
    missing = listed - set(train)
    if missing:
        raise UserError(f"validation sequences not among the training sequences: "
                        f"{', '.join(sorted(missing))}")
    return split_val(train, listed, val_fraction, seed)


def gopro_triplets(
    root: str | Path,
    manifest: str | Path | None = None,
    *,
    dmin: int = 2,
    dmax: int = 6,
    seed: int = 0,
    val_sequences: Iterable[str] = (),
    val_fraction: float = 0.0,
    blur_dir: str = "blur",
    default_split: str = "train",
) -> list[Triplet]:
    """Triplets of a GoPro-style tree (written to ``manifest`` when given).

    Split comes from the folder names (train/test; ``default_split`` when none);
    ``val_sequences`` / ``val_fraction`` move whole training sequences to ``val``. The
    reference offset is drawn from ``seed`` per sequence and frame, so it is deterministic and
    independent of the other sequences.
    """
    check_offsets(dmin, dmax)
    sequences = scan_pairs(root, blur_dir, default_split)
    val = _carve_val(sequences, val_sequences, val_fraction, seed)
    triplets = []
    for seq in sequences:
        split = "val" if seq.name in val else seq.split
        for i, blur in sorted(seq.blur.items()):
            d = choose_offset(i, len(seq.sharp), dmin, dmax, stable_rng(seed, seq.name, i))
            if d is None:
                continue
            triplets.append(Triplet(str(blur), str(seq.sharp[i]), str(seq.sharp[i + d]),
                                    seq.name, d, split))
    if not triplets:
        raise UserError(f"no triplets under {root}: every sequence has a single sharp frame")
    for seq in sequences:
        _check_one_size(seq)
    closer = sum(abs(t.offset) < dmin for t in triplets)
    if closer:
        log.warning("%d of %d triplets have their reference closer than --dmin %d: their "
                    "sequences are too short for it", closer, len(triplets), dmin)
    if manifest is not None:
        write_manifest(manifest, triplets)
    return triplets


def _check_one_size(seq: PairedSequence) -> None:
    """Refuse a sequence whose frames differ in size (a blurry frame and its target must
    line up, and so must the reference): found here, not hours into training."""
    first = None
    for path in [*seq.sharp, *seq.blur.values()]:
        size = image_size(path)
        first = first or (path, size)
        if size != first[1]:
            raise UserError(
                f"the frames of sequence {seq.name} differ in size: {first[0]} is "
                f"{first[1][0]}x{first[1][1]}, {path} {size[0]}x{size[1]}")


# ---------------------------------------------------------------- high-frame-rate sources


@dataclass(frozen=True)
class FrameSource:
    """A high-frame-rate sequence: a video file or a folder of frames."""

    name: str
    split: str | None
    path: Path


def find_frame_sources(sources: Sequence[str | Path]) -> list[FrameSource]:
    """Video files, and folders holding frames (searched recursively), as sequences."""
    found: list[tuple[Path, str | None]] = []
    for source in map(Path, sources):
        if not source.exists():
            raise UserError(f"not found: {source}")
        if source.is_file():
            found.append((source, split_from_path(source.resolve().parent.parts[-1:], "")))
            continue
        for folder, dirs, files in os.walk(source):
            dirs.sort(key=natural_key)
            sharp_name = next((d for d in SHARP_DIRS if d in dirs), None)
            if sharp_name is not None and any(d.startswith("blur") for d in dirs):
                raise UserError(
                    f"{folder} holds blur/ and {sharp_name}/ folders: a blurry/sharp pair "
                    "tree, not high-frame-rate frames; refdeblur-triplets gopro builds its "
                    "manifest")
            if MANIFEST_NAME in files:  # an earlier output of these tools: not a source
                log.warning("%s holds triplets already built (%s): left out", folder,
                            MANIFEST_NAME)
                dirs[:] = []
                continue
            if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
                rel = Path(folder).relative_to(source)
                parts = (source.resolve().name, *rel.parts)
                found.append((Path(folder), split_from_path(parts, "")))
    if not found:
        raise UserError(f"no frame folders or videos found in {', '.join(map(str, sources))}")
    names = unique_names([p for p, _ in found])
    return [FrameSource(n, s or None, p) for n, (p, s) in zip(names, found, strict=True)]


@dataclass(frozen=True)
class _Window:
    start: int
    size: int
    ref: int

    @property
    def middle(self) -> int:
        return self.start + (self.size - 1) // 2


def plan_windows(
    length: int, rng: np.random.Generator, min_frames: int = 7, max_frames: int = 13,
    ref_min: int = 8, ref_max: int = 48, gap: int = 0, limit: int | None = None,
) -> list[_Window]:
    """Consecutive, non-overlapping averaging windows (``gap`` frames apart) with their
    reference frame outside the window, ``ref_min..ref_max`` frames from the middle."""
    sizes = [n for n in range(min_frames, max_frames + 1) if n % 2] or [min_frames]
    windows, start = [], 0
    while limit is None or len(windows) < limit:
        size = int(rng.choice(sizes))
        if start + size > length:
            break
        middle = start + (size - 1) // 2
        d = choose_offset(middle, length, ref_min, ref_max, rng, (start, start + size - 1))
        if d is not None:
            windows.append(_Window(start, size, middle + d))
        start += size + gap
    return windows


def build_hfr_triplets(
    sources: Sequence[str | Path],
    outdir: str | Path,
    *,
    min_frames: int = 7,
    max_frames: int = 13,
    ref_min: int = 8,
    ref_max: int = 48,
    gap: int = 0,
    max_per_sequence: int | None = None,
    seed: int = 0,
    val_sequences: Iterable[str] = (),
    val_fraction: float = 0.0,
    default_split: str = "train",
    reader: str = "auto",
) -> list[Triplet]:
    """GoPro_Large-style triplets from high-frame-rate videos or frame folders.

    Frames are averaged in linear light over windows of ``min_frames..max_frames`` (odd)
    frames; ``ref_min``/``ref_max`` are in source frames (8..48 at 240 fps = 1..6 frames of
    a 30 fps video). Splits come from train/test folder names (``default_split`` otherwise);
    ``val_sequences``/``val_fraction`` move whole training sequences to ``val``.
    """
    if not 1 <= min_frames <= max_frames:
        raise UserError(f"need 1 <= min_frames <= max_frames, got {min_frames}..{max_frames}")
    check_offsets(ref_min, ref_max)
    found = find_frame_sources(sources)
    found = [FrameSource(s.name, s.split or default_split, s.path) for s in found]
    val = _carve_val(found, val_sequences, val_fraction, seed)
    outdir = Path(outdir)
    triplets: list[Triplet] = []
    for src in found:
        _say_when_slow(src.path, min_frames, max_frames)
        split = "val" if src.name in val else src.split
        windows = plan_windows(count_frames(src.path, reader), stable_rng(seed, src.name),
                               min_frames, max_frames, ref_min, ref_max, gap, max_per_sequence)
        triplets += _render_windows(src, split, windows, outdir / split / src.name, reader)
    if not triplets:
        raise UserError(f"sequences too short for a {min_frames}-frame window plus a reference")
    write_manifest(outdir / MANIFEST_NAME, triplets)
    return triplets


#: below this a video is not the high-rate footage the averaging windows are made for
_HIGH_RATE_FPS = 100


def _say_when_slow(path: Path, min_frames: int, max_frames: int) -> None:
    """Warn where a video is of an ordinary frame rate: its windows span many times the
    exposure a 240 fps source's do (a folder of frames has no rate to check)."""
    if Path(path).is_dir():
        return
    from refdeblur_video.video.metadata import probe

    fps = probe(path).fps
    if fps and float(fps) < _HIGH_RATE_FPS:
        log.warning("%s runs at %.3g fps: windows of %d-%d of its frames span %.2f-%.2f s, "
                    "far more motion than the 240 fps footage this averaging is made for",
                    Path(path).name, float(fps), min_frames, max_frames,
                    min_frames / float(fps), max_frames / float(fps))


def _render_windows(src: FrameSource, split: str, windows: list[_Window], folder: Path,
                    reader: str) -> list[Triplet]:
    """Stream the source once, accumulating each window in linear light."""
    owner = {i: w for w in windows for i in range(w.start, w.start + w.size)}
    pending = set(windows)  # windows not written yet
    sums: dict[_Window, np.ndarray] = {}
    sharp_of: dict[_Window, np.ndarray] = {}
    done: dict[_Window, np.ndarray] = {}  # averaged, waiting for their reference
    refs: dict[int, np.ndarray] = {}
    out: list[Triplet] = []
    needed = owner.keys() | {w.ref for w in windows}
    for frame in iter_frames(src.path, needed, reader):
        index, image = frame.index, frame.image
        if any(w.ref == index for w in pending):
            refs[index] = image
        w = owner.get(index)
        if w is not None:
            linear = to_linear(image).astype(np.float64)
            sums[w] = sums[w] + linear if w in sums else linear
            if index == w.middle:
                sharp_of[w] = image
            if index == w.start + w.size - 1:
                done[w] = from_linear(sums.pop(w) / w.size, image.dtype)
        for w in [w for w in done if w.ref in refs]:
            files = {k: folder / k / f"{w.middle:06d}.png" for k in ("blur", "sharp", "ref")}
            write_png(files["blur"], done.pop(w))
            write_png(files["sharp"], sharp_of.pop(w))
            write_png(files["ref"], refs[w.ref])
            pending.discard(w)
            out.append(Triplet(str(files["blur"]), str(files["sharp"]), str(files["ref"]),
                               src.name, w.ref - w.middle, split))
        waiting = {v.ref for v in pending}
        for r in [r for r in refs if r not in waiting]:
            del refs[r]
    return out
