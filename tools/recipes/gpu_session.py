"""Split a checkpoint into fp16 parts small enough to come back from a GPU session, join
them again, and shrink training photos so that they travel (tools/recipes/gpu_session.sh).

    python tools/recipes/gpu_session.py split runs/gpu/paper/best.safetensors out/paper_fp16
        -> out/paper_fp16_1.safetensors, out/paper_fp16_2.safetensors (metadata kept)
    python tools/recipes/gpu_session.py join out/paper_fp16_1.safetensors \
        out/paper_fp16_2.safetensors runs/paper_gpu.safetensors
    python tools/recipes/gpu_session.py shrink .data/photos/*.jpg .data/gpu/photos
        -> each photo at the size that the virtual camera films it at 720p (JPEG)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from refdeblur_video.argparsing import at_least_one  # noqa: E402
from refdeblur_video.data.photo_clips import photo_scale  # noqa: E402
from refdeblur_video.errors import UserError  # noqa: E402
from refdeblur_video.image_files import read_image, write_image  # noqa: E402
from refdeblur_video.model.weights import read_safetensors, write_safetensors  # noqa: E402


def split(checkpoint: Path, prefix: Path, parts: int = 2) -> list[Path]:
    """Write ``checkpoint``'s floating tensors as fp16 into ``parts`` files of about equal
    size, each with the checkpoint's metadata."""
    state, metadata = read_safetensors(checkpoint)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    overflow = [k for k, v in half.items() if v.is_floating_point() and not v.isfinite().all()]
    if overflow:
        raise SystemExit(f"error: {checkpoint}: {overflow[0]} does not fit in fp16")
    total = sum(v.numel() * v.element_size() for v in half.values())
    groups: list[dict[str, torch.Tensor]] = [{} for _ in range(parts)]
    written = 0
    for key in sorted(half):
        index = min(parts - 1, written * parts // max(total, 1))
        groups[index][key] = half[key]
        written += half[key].numel() * half[key].element_size()
    paths = []
    for index, group in enumerate(groups, start=1):
        path = prefix.with_name(f"{prefix.name}_{index}.safetensors")
        write_safetensors(path, group, {**metadata, "part": f"{index}/{parts}"})
        paths.append(path)
    return paths


def join(parts: list[Path], out: Path) -> None:
    """Merge split parts back into one fp32 checkpoint with the original metadata."""
    state: dict[str, torch.Tensor] = {}
    metadata: dict[str, str] = {}
    seen = set()
    for path in parts:
        tensors, metadata = read_safetensors(path)
        seen.add(metadata.get("part", "?"))
        state.update({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    count = metadata.get("part", "?/0").split("/")[1]
    expected = {f"{i}/{count}" for i in range(1, int(count) + 1)} if count.isdigit() else set()
    if not expected or seen != expected:
        raise SystemExit(f"error: parts {sorted(seen)} given, {sorted(expected)} needed")
    metadata.pop("part", None)
    write_safetensors(out, state, metadata)


def shrink(photos: list[Path], dest: Path, quality: int = 90) -> list[Path]:
    """Each photo resized (area interpolation) to the size that ``pan_clip`` first brings it
    to for 720p frames, where that is smaller, and written as JPEG into ``dest`` under its
    own name: the virtual camera then sees nearly the same pixels from a file a few times
    smaller."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in photos:
        image = read_image(path)
        scale = min(1.0, photo_scale(image.shape))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        out = dest / f"{path.stem}.jpg"
        write_image(out, small, quality=quality)
        written.append(out)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("prefix", type=Path)
    s.add_argument("--parts", type=at_least_one, default=2)
    j = sub.add_parser("join")
    j.add_argument("paths", type=Path, nargs="+", help="the parts, then the output")
    k = sub.add_parser("shrink")
    k.add_argument("paths", type=Path, nargs="+", help="the photos, then the output folder")
    k.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    try:
        _run(parser, args)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "shrink":
        if len(args.paths) < 2:
            parser.error("shrink: give the photos, then the output folder")
        for path in shrink(args.paths[:-1], args.paths[-1], args.quality):
            print(path)
    elif args.command == "split":
        for path in split(args.checkpoint, args.prefix, args.parts):
            print(path)
    else:
        join(args.paths[:-1], args.paths[-1])
        print(args.paths[-1])


if __name__ == "__main__":
    main()
