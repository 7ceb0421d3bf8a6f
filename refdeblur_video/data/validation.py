"""Validation sets that measure generalisation: three blur generators written independently
of each other, each on its own held-out sources (never trained on).

- ``rs6dof`` (left out of training entirely; the table that decides what ships):
  :mod:`refdeblur_video.data.rs6dof_triplets`, a rolling-shutter 6-DoF hand-held camera with
  noise and H.264. Sources: juggle frames 128-246, bedroom frames 100-199 and three
  photographs, ``life`` (a stream among rocks), ``picosdeeuropa`` (mountains) and
  ``friends`` (a dog at a window, portrait; filmed with no sharp frame at all, so its
  references are blurred too); 3 triplets each.
- ``shake``: the training synthesis (:func:`refdeblur_video.data.triplets.build_video_triplets`
  with its default camera shake). Sources: juggle frames 0-119, photos Storm and Aqua filmed
  as training films photos (24-frame drifting clips); 5 triplets each, references 1-4 frames
  away.
- ``average``: GoPro-style, the mean in linear light of 5-9 consecutive real frames, the
  middle frame as ground truth and a real frame just outside the window as reference.
  Sources: bedroom frames 0-99 (8 windows) and the photograph ``Dragonfly`` (a close-up of
  a dragonfly among leaves) filmed as a 60-frame drifting clip (6 windows).

The photos are real photographs (no drawings or renderings), none used for training: Storm
and Aqua from the Debian package mate-backgrounds (:data:`SHAKE_PHOTOS`), the others from
lomiri-wallpapers-16.04 (:data:`RS6DOF_PHOTOS`, :data:`AVERAGE_PHOTO`; CC-BY-4.0 and
CC-BY-SA-4.0, see the package's debian/copyright); ``tools/recipes/make_validation.sh``
fetches them. The plasma-workspace-wallpapers pictures not used for training are drawings or
nearly featureless photographs (sky, fog), so none is used.

Layout: ``OUT/<generator>/manifest.jsonl`` (+ images), and ``OUT/generators.json`` listing
the generators, left-out one first. Every choice is drawn from ``seed``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from refdeblur_video.data.manifest import MANIFEST_NAME, Triplet, read_manifest, write_manifest
from refdeblur_video.data.photo_clips import load_video_frames, pan_clip, seed_for
from refdeblur_video.data.rs6dof_triplets import Rs6DofSource, build_rs6dof_triplets
from refdeblur_video.data.shake import average_linear, camera_response
from refdeblur_video.data.triplets import (
    build_video_triplets,
    stable_rng,
)
from refdeblur_video.errors import UserError
from refdeblur_video.image_files import IMAGE_SUFFIXES, read_image, to_uint8, write_png
from refdeblur_video.video.sources import fetch_frames, iter_frames

LEFT_OUT = "rs6dof"
GENERATORS = ("rs6dof", "shake", "average")  # the left-out one first
VIDEOS = {"juggle": "05_default_juggle.mp4", "bedroom": "bedroom.mp4"}
# held-out photos, never used for training: sequence name -> file stem in the photos folder
SHAKE_PHOTOS = {"Storm": "Storm", "Aqua": "Aqua"}  # mate-backgrounds
RS6DOF_PHOTOS = {"life": "life_by_Aitzol_Berasategi",  # lomiri-wallpapers-16.04
                 "picosdeeuropa": "picosdeeuropa_by_Aitzol_Berasategi",
                 "friends": "friends_by_Aitzol_Berasategi"}
RS6DOF_NO_SHARP = ("friends",)  # filmed with no sharp frame at all
AVERAGE_PHOTO = ("Dragonfly", "Dragonfly_by_Bolly")  # lomiri-wallpapers-16.04
PHOTOS = (*SHAKE_PHOTOS.values(), *RS6DOF_PHOTOS.values(), AVERAGE_PHOTO[1])
ABOUT = {
    "rs6dof": "rolling-shutter 6-DoF hand-held camera, noise, H.264 (left out of training)",
    "shake": "the training synthesis: sub-frame camera shake of one frame",
    "average": "mean of 5-9 consecutive real frames in linear light (GoPro-style)",
}


def find_photo(folder: Path, name: str) -> Path:
    """The image file ``folder/<name>.<image suffix>``."""
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    raise UserError(f"held-out photo {name} not found in {folder} "
                    "(tools/recipes/make_validation.sh fetches them)")


def _video(videos: Path, name: str) -> Path:
    path = videos / VIDEOS[name]
    if not path.is_file():
        raise UserError(f"held-out video not found: {path}")
    return path


# --- shake ------------------------------------------------------------------------------


def build_shake(out: Path, videos: Path, photos: Path, seed: int) -> tuple[list[Triplet], list]:
    """The training synthesis on juggle frames 0-119, Storm and Aqua (5 triplets each)."""
    juggle = [frame.image for frame in iter_frames(_video(videos, "juggle"), set(range(120)))]
    clips = {"juggle": juggle}
    for name, stem in SHAKE_PHOTOS.items():  # filmed exactly as the training set films photos
        clips[name] = load_video_frames(find_photo(photos, stem))
    return shake_triplets(out, clips, seed), \
        ["juggle[0:120]", "Storm (24-frame clip)", "Aqua (24-frame clip)"]


def shake_triplets(out: Path, clips: dict[str, Sequence[np.ndarray]], seed: int
                   ) -> list[Triplet]:
    """The shake generator's triplets (5 per clip, references 1-4 frames away) of named
    frame sequences, written to ``out``; the frames are staged as PNG files meanwhile."""
    staging = out / "_sources"
    shutil.rmtree(staging, ignore_errors=True)
    folders = [_write_frames(staging / name, frames) for name, frames in clips.items()]
    try:
        return build_video_triplets(folders, out, frames_per_video=5, dmin=1, dmax=4,
                                    seed=seed, val_videos=list(clips))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_frames(folder: Path, frames: Sequence[np.ndarray]) -> Path:
    for k, image in enumerate(frames):
        write_png(folder / f"{k:06d}.png", to_uint8(image))
    return folder


# --- average ----------------------------------------------------------------------------


def plan_average_windows(
    first: int, end: int, count: int, rng: np.random.Generator, sizes: Sequence[int] = (5, 7, 9)
) -> list[tuple[int, int, int]]:
    """``(middle, half, reference)`` per window: ``count`` windows of ``2 * half + 1`` frames,
    one per equal slice of ``first..end``, the reference just outside, on a random side
    (the other when that side leaves the range)."""
    windows = []
    edges = np.linspace(first, end, count + 1)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        half = int(rng.choice(sizes)) // 2
        middle = int(rng.integers(int(lo) + half + 1, max(int(lo) + half + 2, int(hi) - half - 1)))
        side = 1 if rng.random() < 0.5 else -1
        reference = middle + side * (half + 1)
        if not first <= reference < end:
            reference = middle - side * (half + 1)
        if not (first <= middle - half and middle + half < end and first <= reference < end):
            raise UserError(f"frames {first}..{end} are too few for {count} windows")
        windows.append((middle, half, reference))
    return windows


def _average_sequence(out: Path, name: str, frame: Callable[[int], np.ndarray],
                      windows: list[tuple[int, int, int]]) -> list[Triplet]:
    folder = out / "val" / name
    triplets = []
    for middle, half, reference in windows:
        files = {k: folder / k / f"{middle:06d}.png" for k in ("blur", "sharp", "ref")}
        write_png(files["blur"], average_linear([frame(i) for i in range(middle - half,
                                                                          middle + half + 1)]))
        write_png(files["sharp"], frame(middle))
        write_png(files["ref"], frame(reference))
        triplets.append(Triplet(str(files["blur"]), str(files["sharp"]), str(files["ref"]),
                                name, reference - middle, "val"))
    return triplets


def build_average(out: Path, videos: Path, photos: Path, seed: int) -> tuple[list[Triplet], list]:
    """Linear-light averages on bedroom frames 0-99 (8 windows) and Dragonfly (6
    windows)."""
    windows = plan_average_windows(0, 100, 8, stable_rng(seed, "average", "bedroom"))
    wanted = {i for m, h, r in windows for i in (*range(m - h, m + h + 1), r)}
    bedroom = fetch_frames(_video(videos, "bedroom"), wanted, uint8=True)
    triplets = _average_sequence(out, "bedroom", bedroom.__getitem__, windows)
    name, stem = AVERAGE_PHOTO
    photo_path = find_photo(photos, stem)
    clip = pan_clip(to_uint8(read_image(photo_path)), 60,
                    rng=np.random.default_rng([seed, seed_for(photo_path)]))
    windows = plan_average_windows(0, len(clip), 6, stable_rng(seed, "average", name))
    triplets += _average_sequence(out, name, clip.__getitem__, windows)
    write_manifest(out / MANIFEST_NAME, triplets)
    return triplets, ["bedroom[0:100]", f"{name} (60-frame drifting clip)"]


# --- rs6dof -----------------------------------------------------------------------------


def rs6dof_sources(videos: Path, photos: Path) -> list[Rs6DofSource]:
    """The left-out camera's sources: juggle 128-246, bedroom 100-199 and the three
    photographs of :data:`RS6DOF_PHOTOS` (those of :data:`RS6DOF_NO_SHARP` with no sharp
    frame)."""
    sources = [Rs6DofSource("juggle", _video(videos, "juggle"), (128, 247)),
               Rs6DofSource("bedroom", _video(videos, "bedroom"), (100, 200))]
    return sources + [Rs6DofSource(name, find_photo(photos, stem),
                                   sharp_frames=name not in RS6DOF_NO_SHARP)
                      for name, stem in RS6DOF_PHOTOS.items()]


def build_rs6dof(out: Path, videos: Path, photos: Path, seed: int) -> tuple[list[Triplet], list]:
    """The left-out camera on :func:`rs6dof_sources`."""
    triplets = build_rs6dof_triplets(rs6dof_sources(videos, photos), out, targets=3, seed=seed)
    return triplets, ["juggle[128:247]", "bedroom[100:200]",
                      *(name + (" (no sharp frame)" if name in RS6DOF_NO_SHARP else "")
                        for name in RS6DOF_PHOTOS)]


BUILDERS = {"rs6dof": build_rs6dof, "shake": build_shake, "average": build_average}


def build_validation(
    outdir: str | Path,
    videos: str | Path,
    photos: str | Path,
    *,
    seed: int = 0,
    only: Sequence[str] | None = None,
    response_gamma: float | None = None,
) -> list[Triplet]:
    """Build the generators' sets (``only``: a subset) into ``outdir`` and write
    ``outdir/generators.json``; returns every triplet written. ``response_gamma``: blur
    the shake and average sets through that power-law camera response instead of sRGB's
    (:func:`~refdeblur_video.data.shake.camera_response`; rs6dof keeps its own), recorded
    in the index; one folder holds one response."""
    outdir, videos, photos = Path(outdir), Path(videos), Path(photos)
    chosen = list(only) if only else list(GENERATORS)
    unknown = sorted(set(chosen) - set(GENERATORS))
    if unknown:
        raise UserError(f"unknown generators {', '.join(unknown)} (have {', '.join(GENERATORS)})")
    if response_gamma is not None and not (0 < response_gamma < math.inf):
        raise UserError(f"the response gamma must be a positive number, not {response_gamma}")
    index_path = outdir / "generators.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    entries = {entry["name"]: entry for entry in index.get("generators", [])}
    built = [name for name in GENERATORS if name in chosen]
    for name, entry in entries.items():
        if name not in built and entry.get("response_gamma") != response_gamma:
            raise UserError(f"{outdir}'s {name} set was built with response gamma "
                            f"{entry.get('response_gamma') or 'of sRGB'}, this one would be "
                            f"{response_gamma or 'of sRGB'}: build it into another folder")
    # each set is built in a hidden folder; when all are built, the earlier sets are moved
    # aside, the new ones in and the index replaced (renames, no copying), and only then are
    # the earlier ones deleted: an interrupted or failed build leaves them and their index
    partial = {name: outdir / f".{name}.partial" for name in built}
    earlier = {name: outdir / f".{name}.earlier" for name in built}
    moved_in: list[str] = []
    try:
        for name in built:
            _remove(partial[name])  # what a killed run left
            with camera_response(response_gamma):
                triplets, sources = BUILDERS[name](partial[name], videos, photos, seed)
            entries[name] = {"name": name, "left_out": name == LEFT_OUT,
                             "manifest": f"{name}/{MANIFEST_NAME}", "triplets": len(triplets),
                             "sources": sources, "about": ABOUT[name], "seed": seed}
            if response_gamma is not None:
                entries[name]["response_gamma"] = response_gamma
        index = {"left_out": LEFT_OUT,
                 "generators": [entries[name] for name in GENERATORS if name in entries]}
        written = index_path.with_name(f".{index_path.name}.partial")
        written.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        for name in built:
            _remove(earlier[name])
            if (outdir / name).exists() or (outdir / name).is_symlink():
                (outdir / name).rename(earlier[name])
        for name in built:
            partial[name].rename(outdir / name)
            moved_in.append(name)
        written.replace(index_path)
    except OSError as exc:
        _undo(outdir, built, moved_in, partial, earlier)
        raise UserError(f"cannot build the validation sets in {outdir}: {exc}") from None
    except BaseException:
        _undo(outdir, built, moved_in, partial, earlier)
        raise
    for folder in earlier.values():
        _remove(folder)
    # the triplets where they now lie (their manifests hold paths relative to themselves)
    return [t for name in built for t in read_manifest(outdir / name / MANIFEST_NAME)]


def _undo(outdir: Path, built: list[str], moved_in: list[str], partial: dict[str, Path],
          earlier: dict[str, Path]) -> None:
    """Remove what a stopped build made and put the earlier sets back."""
    for name in built:
        _remove(outdir / name if name in moved_in else partial[name])
        if earlier[name].exists() or earlier[name].is_symlink():
            earlier[name].rename(outdir / name)
    _remove(outdir / ".generators.json.partial")


def _remove(path: Path) -> None:
    """Delete a file, a folder or a link (never the folder a link points to)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
