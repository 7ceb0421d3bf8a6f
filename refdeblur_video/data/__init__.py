"""Training data: GoPro-style layouts, blur synthesis, triplet manifests and datasets.

- :mod:`.gopro`: scan ``{blur,sharp}`` trees into a manifest; build triplets from
  high-frame-rate sources (linear-light frame averaging).
- :mod:`.synth`: linear-light averaging and hand-held camera-shake blur (NumPy/OpenCV and a
  batched torch version).
- :mod:`.triplets`: manifest format, reference offsets, splits, triplets from ordinary videos.
- :mod:`.dataset`: ``TripletDataset`` (manifest) and ``OnlineVideoTriplets`` (in-memory
  frames, blur synthesised on the fly). Imported lazily: it needs torch.
- :mod:`.photo_clips`: still photos filmed as short clips; ``load_video_frames`` (any
  training source in memory).
"""

from __future__ import annotations

from typing import Any

from refdeblur_video.data.gopro import build_hfr_triplets, gopro_triplets, scan_pairs
from refdeblur_video.data.photo_clips import load_video_frames
from refdeblur_video.data.synth import (
    DEFAULT_SHAKE,
    CameraShake,
    average_linear,
    synthesize_camera_blur,
    synthesize_camera_blur_torch,
)
from refdeblur_video.data.triplets import (
    Triplet,
    build_video_triplets,
    read_manifest,
    write_manifest,
)

_LAZY = {"TripletDataset", "OnlineVideoTriplets", "finish_gpu_batch"}

__all__ = [
    "DEFAULT_SHAKE",
    "CameraShake",
    "OnlineVideoTriplets",
    "Triplet",
    "TripletDataset",
    "average_linear",
    "build_hfr_triplets",
    "build_video_triplets",
    "finish_gpu_batch",
    "gopro_triplets",
    "load_video_frames",
    "read_manifest",
    "scan_pairs",
    "synthesize_camera_blur",
    "synthesize_camera_blur_torch",
    "write_manifest",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from refdeblur_video.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
