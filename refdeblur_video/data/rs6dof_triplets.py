"""Validation triplets from the ``rs6dof`` camera (:mod:`refdeblur_video.data.shake6dof`).

Each source (a stretch of a real video, or a still photo) is filmed as one short clip of
``3 * targets + 1`` frames in which frames 1, 4, 7, ... are exposed long (the blurry
targets) and the others short (sharp neighbours), the whole clip shaken by one continuous
hand-held path, with sensor noise and H.264 compression. A target's triplet is: the frame
the camera delivered (blurry), its zero-exposure ground truth, and as reference the
delivered neighbour that :func:`refdeblur_video.frames.references.plan_references` picks
(the pipeline's rule), so it carries the same noise and codec as a real one. A source can
instead be filmed with no sharp frame at all (``sharp_frames=False``): every frame is
exposed long (1/100-1/30 s), so the reference is blurred too, as when a whole shot shakes.

Video frames are filmed through a centred crop (5 % margins, sizes a multiple of 8): the
shaken views then show real picture beyond the crop instead of reflected borders. Photos are
filmed at 1280 x 720 (portrait: 720 x 1280) as a plane at the scene depth, at 15 fps
(a phone's low-light rate, which allows exposures up to 1/15 s); a video keeps its own rate,
which caps its exposures at one frame interval.

Also written, per source, for the temporal metrics (``refdeblur-eval temporal``):
``clips/<name>/input.mp4`` (the delivered clip) and ``clips/<name>/gt/`` (ground truth).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from refdeblur_video.data.manifest import MANIFEST_NAME, Triplet, write_manifest
from refdeblur_video.data.shake6dof import (
    DEFAULT_SETTINGS,
    ClipFrame,
    RenderedClip,
    Rs6DofSettings,
    crop_base,
    draw_camera,
    fit_photo,
    photo_bases,
    render_clip,
)
from refdeblur_video.data.triplets import stable_rng
from refdeblur_video.errors import UserError
from refdeblur_video.frames.references import plan_references
from refdeblur_video.frames.sharpness import sharpness
from refdeblur_video.image_files import read_image, to_uint8, write_png
from refdeblur_video.video.sources import iter_frames

BLURRY_EXPOSURE_S = (1 / 200, 1 / 15)  # log-uniform, stratified per source; capped at 1/fps
SHARP_EXPOSURE_S = (1 / 1000, 1 / 400)  # log-uniform
# a clip with no sharp frame at all (``Rs6DofSource.sharp_frames=False``): every frame long,
# the targets stratified over this range, the others drawn from it; capped at 1/fps
NO_SHARP_EXPOSURE_S = (1 / 100, 1 / 30)
PHOTO_SIZE = (720, 1280)
PHOTO_FPS = 15.0
CROP = 0.9  # share of a video frame's width and height kept
MAX_OFFSET = 3  # reference search radius, frames


@dataclass(frozen=True)
class Rs6DofSource:
    """A video (with the half-open frame range to draw the clip from) or a photo;
    ``sharp_frames=False`` films it with no sharp frame at all (every frame exposed long,
    so the reference is blurred too)."""

    name: str
    path: Path
    frames: tuple[int, int] | None = None  # None: a photo
    sharp_frames: bool = True


def video_fps(path: Path) -> float:
    """Average frame rate of a video file (30 for frame folders and when the container does
    not say)."""
    if path.is_dir():
        return 30.0
    import av

    from refdeblur_video.video.metadata import main_video_stream

    with av.open(str(path)) as container:
        rate = main_video_stream(container).average_rate
    return float(rate) if rate else 30.0


def _exposures(rng: np.random.Generator, targets: int, fps: float,
               sharp_frames: bool = True) -> list[float]:
    """Long exposures for the targets (stratified over the log range, shuffled), short ones
    for the others; the clip's frame ``k`` is a target when ``k % 3 == 1``. Without
    ``sharp_frames`` every frame is exposed long (:data:`NO_SHARP_EXPOSURE_S`)."""
    low, high = BLURRY_EXPOSURE_S if sharp_frames else NO_SHARP_EXPOSURE_S
    high = min(high, 1 / fps)
    others = SHARP_EXPOSURE_S if sharp_frames else (min(low, high), high)
    strata = (np.arange(targets) + rng.uniform(0, 1, targets)) / targets
    long = np.exp(math.log(low) + rng.permutation(strata) * (math.log(high) - math.log(low)))
    exposures = []
    for k in range(3 * targets + 1):
        if k % 3 == 1:
            exposures.append(float(long[k // 3]))
        else:
            exposures.append(float(np.exp(rng.uniform(*np.log(others)))))
    return exposures


def _film(source: Rs6DofSource, targets: int, rng: np.random.Generator,
          settings: Rs6DofSettings, photo_size: tuple[int, int], noise: bool = True,
          compress: bool = True) -> tuple[RenderedClip, int]:
    """The clip of one source and the index of its first frame in the source."""
    length = 3 * targets + 1
    if source.frames is None:
        photo = to_uint8(read_image(source.path))
        size = photo_size if photo.shape[1] >= photo.shape[0] else photo_size[::-1]
        fps = PHOTO_FPS
        camera = draw_camera(rng, fps, settings)
        photo = fit_photo(photo, size)
        bases = photo_bases(photo.shape[:2], size, length, rng, camera)
        sources = [photo] * length
        first = 0
    else:
        lo, hi = source.frames
        if hi - lo < length:
            raise UserError(f"{source.name}: frame range {lo}..{hi} is shorter than {length}")
        first = int(rng.integers(lo, hi - length + 1))
        wanted = set(range(first, first + length))
        sources = [frame.image for frame in iter_frames(source.path, wanted, uint8=True)]
        if len(sources) != length:
            raise UserError(f"{source.name}: could not decode frames {first}..{first + length}")
        height, width = sources[0].shape[:2]
        size = (int(height * CROP) // 8 * 8, int(width * CROP) // 8 * 8)
        bases = [crop_base((width - size[1]) // 2, (height - size[0]) // 2)] * length
        fps = video_fps(source.path)
        camera = draw_camera(rng, fps, settings)
    exposures = _exposures(rng, targets, fps, source.sharp_frames)
    clip = [ClipFrame(s, b, e) for s, b, e in zip(sources, bases, exposures, strict=True)]
    return render_clip(clip, size, rng, fps=fps, settings=settings, camera=camera,
                       noise=noise, compress=compress), first


def _reference(scores: list[float], target: int) -> int:
    """The pipeline's reference for ``target`` among the clip's sharp frames (the other
    targets score 0 here, so they are never chosen); the previous frame when the rule finds
    none sharper than the target."""
    masked = [s if k == target or k % 3 != 1 else 0.0 for k, s in enumerate(scores)]
    reference = plan_references(masked, all_frames=True, max_offset=MAX_OFFSET)[target].reference
    return reference if reference >= 0 else target - 1


def build_rs6dof_triplets(
    sources: list[Rs6DofSource],
    outdir: str | Path,
    *,
    targets: int = 3,
    seed: int = 0,
    settings: Rs6DofSettings = DEFAULT_SETTINGS,
    photo_size: tuple[int, int] = PHOTO_SIZE,
    noise: bool = True,
    compress: bool = True,
) -> list[Triplet]:
    """Film every source, write ``outdir/val/<name>/{blur,sharp,ref}/<frame>.png``, the
    clips, ``outdir/manifest.jsonl`` and ``outdir/blur_meta.jsonl``; returns the triplets.
    ``photo_size`` (height, width; landscape) is the frame size photos are filmed at;
    ``noise`` and ``compress`` off leave out the sensor noise and H.264 (for diagnosis)."""
    outdir = Path(outdir)
    triplets, metas = [], []
    for source in sources:
        rng = stable_rng(seed, "rs6dof", source.name)
        rendered, first = _film(source, targets, rng, settings, photo_size, noise, compress)
        scores = [sharpness(frame) for frame in rendered.frames]
        folder = outdir / "val" / source.name
        for target in range(1, len(rendered.frames), 3):
            ref = _reference(scores, target)
            files = {k: folder / k / f"{first + target:06d}.png" for k in ("blur", "sharp", "ref")}
            write_png(files["blur"], rendered.frames[target])
            write_png(files["sharp"], rendered.truth[target])
            write_png(files["ref"], rendered.frames[ref])
            triplets.append(Triplet(str(files["blur"]), str(files["sharp"]), str(files["ref"]),
                                    source.name, ref - target, "val"))
            metas.append({**rendered.meta[target], "sequence": source.name,
                          "frame": first + target, "offset": ref - target,
                          "sharp_frames": source.sharp_frames,
                          "camera": asdict(rendered.camera)})
        _write_clip(outdir / "clips" / source.name, rendered, first, source.sharp_frames)
    write_manifest(outdir / MANIFEST_NAME, triplets)
    with (outdir / "blur_meta.jsonl").open("w", encoding="utf-8") as out:
        for meta in metas:
            out.write(json.dumps(meta) + "\n")
    return triplets


def _write_clip(folder: Path, rendered: RenderedClip, first: int, sharp_frames: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.mp4").write_bytes(rendered.video)
    for k, image in enumerate(rendered.truth):
        write_png(folder / "gt" / f"{first + k:06d}.png", image)
    info = {"first_frame": first, "sharp_frames": sharp_frames,
            "camera": asdict(rendered.camera), "frames": rendered.meta}
    (folder / "meta.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
