"""Training triplets (blurry, sharp, reference): the reference-offset and split choices shared
by the builders, and the builder for ordinary 24-30 fps videos (the manifest they write:
:mod:`refdeblur_video.data.manifest`).

Ordinary videos (:func:`build_video_triplets`): for each chosen frame ``i`` the ground truth is
the frame itself, the blurry input is the frame blurred by a synthetic hand-held camera path
(:mod:`refdeblur_video.data.shake`), and the reference is a real neighbouring frame
``i + d`` (``dmin <= |d| <= dmax``, in the same shot: never across a cut found by
:mod:`refdeblur_video.frames.shots`), so the real scene motion between them is kept. Videos,
never frames, are split between ``train`` and ``val``.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from refdeblur_video.data.manifest import MANIFEST_NAME, Triplet, write_manifest
from refdeblur_video.data.shake import DEFAULT_SHAKE, CameraShake, synthesize_camera_blur
from refdeblur_video.errors import FrameSizeError, UserError
from refdeblur_video.frames.shots import shot_ids, shot_ranges
from refdeblur_video.image_files import resize_max_side, to_uint8, write_png
from refdeblur_video.video.sources import count_frames, fetch_frames, iter_frames

log = logging.getLogger(__name__)


def stable_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """Generator determined by ``seed`` and keys (strings hashed with CRC-32), so that one
    sequence's choices do not depend on which other sequences are present."""
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.default_rng(words)


def check_offsets(dmin: int, dmax: int) -> None:
    if dmin < 1 or dmax < dmin:
        raise UserError(f"need 1 <= dmin <= dmax for reference offsets, got {dmin}..{dmax}")


def choose_offset(
    index: int,
    length: int,
    dmin: int,
    dmax: int,
    rng: np.random.Generator,
    exclude: tuple[int, int] | None = None,
    shot: tuple[int, int] | None = None,
) -> int | None:
    """Offset ``d`` of a reference frame ``index + d`` in a sequence of ``length`` frames.

    ``dmin <= |d| <= dmax`` and the reference lies outside the inclusive index range
    ``exclude`` (default: the frame itself) and inside the half-open range ``shot`` (default:
    the whole sequence). Near short sequences the range is clipped: the largest valid
    ``|d| < dmin`` is used. ``None`` when no other frame exists.
    """
    lo, hi = exclude if exclude is not None else (index, index)
    first, end = shot if shot is not None else (0, length)

    def valid(d: int) -> bool:
        j = index + d
        return d != 0 and max(0, first) <= j < min(length, end) and not lo <= j <= hi

    span = range(dmin, dmax + 1)
    candidates = [d for m in span for d in (-m, m) if valid(d)]
    if not candidates:
        closer = [d for m in range(dmin - 1, 0, -1) for d in (-m, m) if valid(d)]
        if not closer:
            return None
        candidates = [d for d in closer if abs(d) == abs(closer[0])]
    return int(candidates[int(rng.integers(len(candidates)))])


def split_val(
    names: Sequence[str], val_names: Iterable[str] = (), val_fraction: float = 0.0, seed: int = 0
) -> set[str]:
    """Names that go to ``val``: the listed ones plus ``round(val_fraction * len(names))``
    others drawn deterministically from ``seed`` (at least one when the fraction is > 0 and
    more than one name exists; the draw always leaves one name for training)."""
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val fraction must be in [0, 1), got {val_fraction}")
    chosen = {n for n in names if n in set(val_names)}
    rest = sorted(n for n in names if n not in chosen)
    want = round(val_fraction * len(names))
    if val_fraction > 0 and len(names) > 1:
        want = max(want, 1)
    want = min(want - len(chosen), len(rest) - 1)  # keep at least one name for training
    if want > 0:
        order = stable_rng(seed, "val-split").permutation(len(rest))
        chosen.update(rest[i] for i in order[:want])
    return chosen


def unique_names(paths: Sequence[Path]) -> list[str]:
    """Stems of ``paths``, made unique by suffixes ``_2``, ``_3``, ... in order."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = p.stem if p.is_file() else p.name
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def _refuse_repeats(paths: Sequence[Path]) -> None:
    """One input given twice would make the same triplets twice, or put one video in two
    splits."""
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise UserError(f"{path} is given twice (as {seen[key]} too)")
        seen[key] = path


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of a grey copy with short side <= 360 (higher = sharper)."""
    grey = cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2GRAY)
    scale = 360 / min(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def _plan_video(
    length: int, count: int, dmin: int, dmax: int, rng: np.random.Generator, tries: int,
    shots: Sequence[tuple[int, int]] = (),
) -> list[dict[int, list[int]]]:
    """Stratified choice, one sample per equal slice of the video: for each sample, up to
    ``tries`` candidate frames, each with up to ``tries`` candidate reference offsets within
    the frame's shot (``shots[i]``, :func:`shot_ranges`; default the whole video)."""
    plans = []
    edges = np.linspace(0, length, min(count, length) + 1)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        lo, hi = int(a), max(int(a) + 1, int(b))
        plan: dict[int, list[int]] = {}
        for _ in range(tries):
            i = int(rng.integers(lo, hi))
            shot = shots[min(i, len(shots) - 1)] if shots else None
            offsets = {choose_offset(i, length, dmin, dmax, rng, shot=shot)
                       for _ in range(tries)}
            plan.setdefault(i, []).extend(sorted(d for d in offsets if d is not None))
        plans.append({i: ds for i, ds in plan.items() if ds})
    return plans


@dataclass(frozen=True)
class _Blur:
    """The blur settings of :func:`build_video_triplets`, passed on as they are to
    :func:`~refdeblur_video.data.shake.synthesize_camera_blur`."""

    strength: float
    shake: CameraShake
    noise_sigma: float
    poisson_peak: float
    jpeg_quality: tuple[int, int] | None

    def apply(self, image: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return synthesize_camera_blur(
            image, rng, self.strength, shake=self.shake, noise_sigma=self.noise_sigma,
            poisson_peak=self.poisson_peak, jpeg_quality=self.jpeg_quality)


@dataclass(frozen=True)
class _VideoJob:
    """What every video's samples are made with."""

    outdir: Path
    count: int
    dmin: int
    dmax: int
    seed: int
    blur: _Blur
    pick_sharpest: bool
    max_side: int | None
    reader: str


def build_video_triplets(
    videos: Sequence[str | Path],
    outdir: str | Path,
    *,
    frames_per_video: int = 20,
    dmin: int = 1,
    dmax: int = 6,
    seed: int = 0,
    val_videos: Iterable[str] = (),
    val_fraction: float = 0.0,
    strength: float = 1.0,
    shake: CameraShake = DEFAULT_SHAKE,
    noise_sigma: float = 0.0,
    poisson_peak: float = 0.0,
    jpeg_quality: tuple[int, int] | None = None,
    pick_sharpest: bool = True,
    max_side: int | None = None,
    reader: str = "auto",
    progress: bool = False,
) -> list[Triplet]:
    """Build synthetic-blur triplets from ordinary videos (or frame folders) into ``outdir``.

    Writes ``outdir/<split>/<video>/{blur,sharp,ref}/<frame>.png``, ``outdir/manifest.jsonl``
    and ``outdir/blur_meta.jsonl`` (the blur parameters of every sample). Up to
    ``frames_per_video`` frames are taken per video, one per equal slice of it. ``val_videos``
    (names, file names or paths) and ``val_fraction`` choose whole validation videos. With
    ``pick_sharpest`` the sharper of two candidate frames is the ground truth (and the sharper
    of two candidate offsets the reference), which avoids frames already blurry as targets.
    ``max_side`` downsizes frames first (recommended for 1080p+ sources: it also shrinks
    compression artefacts and blur already present). Blur settings: see
    :func:`refdeblur_video.data.shake.synthesize_camera_blur`.
    """
    check_offsets(dmin, dmax)
    if frames_per_video < 1:
        raise UserError("frames per video must be at least 1")
    paths = [Path(v) for v in videos]
    for p in paths:
        if not p.exists():
            raise UserError(f"video not found: {p}")
    _refuse_repeats(paths)
    names = unique_names(paths)
    for name, path in zip(names, paths, strict=True):
        own = path.stem if path.is_file() else path.name
        if name != own:
            log.warning("%s is named %s in the manifest, as another input is named %s "
                        "(--val-videos takes the new name)", path, name, own)
    val = split_val(names, _listed_names(names, paths, val_videos), val_fraction, seed)
    blur = _Blur(strength, shake, noise_sigma, poisson_peak, jpeg_quality)
    job = _VideoJob(Path(outdir), frames_per_video, dmin, dmax, seed, blur, pick_sharpest,
                    max_side, reader)
    triplets: list[Triplet] = []
    metas: list[dict[str, Any]] = []
    bar = _progress(len(paths) * frames_per_video, progress)
    too_short = []
    for name, path in zip(names, paths, strict=True):
        length = count_frames(path, job.reader)
        if length < 2:  # one frame has no neighbour to be its reference
            too_short.append(f"{path}: {length} frame{'' if length == 1 else 's'}")
            continue
        split = "val" if name in val else "train"
        for t, meta in _video_samples(path, name, split, length, job, bar):
            triplets.append(t)
            metas.append(meta)
    if bar is not None:
        bar.close()
    shown = "; ".join(too_short)
    if not triplets:
        raise UserError(f"no triplets could be made: {shown or 'no frame decoded'} (a video "
                        "needs at least 2 frames)")
    if too_short:
        log.warning("skipped %s (a video needs at least 2 frames)", shown)
    write_manifest(job.outdir / MANIFEST_NAME, triplets)
    with (job.outdir / "blur_meta.jsonl").open("w", encoding="utf-8") as out:
        for meta in metas:
            out.write(json.dumps(meta) + "\n")
    return triplets


def _listed_names(names: Sequence[str], paths: Sequence[Path],
                  val_videos: Iterable[str]) -> set[str]:
    """The names of the videos that ``val_videos`` lists (by name, file name, stem or path);
    one it lists that is not an input is a :class:`UserError`."""
    unmatched = set(val_videos)
    listed = set()
    for name, p in zip(names, paths, strict=True):
        aliases = {name, p.name, p.stem, str(p)}
        if aliases & unmatched:
            listed.add(name)
            unmatched -= aliases
    if unmatched:
        raise UserError(f"validation videos not among the inputs: {', '.join(sorted(unmatched))}")
    return listed


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="triplet")


def _decodable_frames(path: Path, reader: str) -> Iterator[np.ndarray]:
    """The frames of a video up to the first that fails to decode (the frame count from
    demuxing may exceed what decodes; the samples below drop what is missing)."""
    try:
        for frame in iter_frames(path, reader=reader):
            yield frame.image
    except FrameSizeError:
        raise  # not a decoding failure: no triplet of this video could be right
    except UserError:
        return


def _plan(path: Path, name: str, length: int, job: _VideoJob) -> list[dict[int, list[int]]]:
    """:func:`_plan_video` for one video: its shots found, its draws seeded by its name."""
    rng = stable_rng(job.seed, name)
    tries = 2 if job.pick_sharpest else 1
    shots = shot_ranges(shot_ids(_decodable_frames(path, job.reader)))
    return _plan_video(length, job.count, job.dmin, job.dmax, rng, tries, shots)


def _fetch_planned(path: Path, plans: list[dict[int, list[int]]],
                   job: _VideoJob) -> dict[int, np.ndarray]:
    """The frames the plans may use (as frames or references), resized to ``max_side``."""
    wanted = {j for plan in plans for i, ds in plan.items() for j in (i, *(i + d for d in ds))}
    return {
        i: resize_max_side(image, job.max_side)
        for i, image in fetch_frames(path, wanted, job.reader, uint8=True).items()
    }


def _video_samples(path: Path, name: str, split: str, length: int, job: _VideoJob, bar):
    """Yield ``(triplet, meta)`` for one video of ``length`` frames, writing its PNGs."""
    plans = _plan(path, name, length, job)
    if len(plans) < job.count:
        log.warning("%s: %d frames give %d triplets, not --frames-per-video %d", name, length,
                    len(plans), job.count)
    frames = _fetch_planned(path, plans, job)
    folder = job.outdir / split / name
    for k, plan in enumerate(plans):
        # the frame count from demuxing may exceed what decodes: drop what is missing
        options = {i: [d for d in ds if i + d in frames] for i, ds in plan.items() if i in frames}
        options = {i: ds for i, ds in options.items() if ds}
        if not options:
            continue
        i = max(options, key=lambda c: sharpness(frames[c]))
        d = max(options[i], key=lambda c: sharpness(frames[i + c]))
        blurred, meta = job.blur.apply(frames[i], stable_rng(job.seed, name, "blur", k))
        files = {kind: folder / kind / f"{i:06d}.png" for kind in ("blur", "sharp", "ref")}
        write_png(files["blur"], blurred)
        write_png(files["sharp"], frames[i])
        write_png(files["ref"], frames[i + d])
        t = Triplet(str(files["blur"]), str(files["sharp"]), str(files["ref"]), name, d, split)
        if bar is not None:
            bar.update(1)
        yield t, {"sequence": name, "frame": i, "offset": d, **meta}
