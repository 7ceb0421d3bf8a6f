"""Training data: GoPro-style layouts, blur synthesis, triplet manifests and datasets.

- :mod:`.gopro`: scan ``{blur,sharp}`` trees into a manifest; build triplets from
  high-frame-rate sources (linear-light frame averaging).
- :mod:`.shake`: linear-light averaging and hand-held camera-shake blur (NumPy/OpenCV and a
  batched torch version).
- :mod:`.manifest`: the triplet manifest (``Triplet``, ``read_manifest``, ``write_manifest``).
- :mod:`.triplets`: reference offsets, splits, triplets from ordinary videos.
- :mod:`.dataset`: ``TripletDataset`` (manifest) and ``OnlineVideoTriplets`` (in-memory
  frames, blur synthesised on the fly). It needs torch.
- :mod:`.photo_clips`: still photos filmed as short clips; ``load_video_frames`` (any
  training source in memory).
- :mod:`.dead_leaves`: synthetic photos with dense texture at every scale, in a real
  photo's colours (training material).

The names below load on first use, so that a module needing only the manifest (the
evaluator, for one) imports nothing else.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {
    "DEFAULT_SHAKE": "shake",
    "CameraShake": "shake",
    "OnlineVideoTriplets": "dataset",
    "Triplet": "manifest",
    "TripletDataset": "dataset",
    "average_linear": "shake",
    "build_hfr_triplets": "gopro",
    "build_video_triplets": "triplets",
    "finish_gpu_batch": "dataset",
    "gopro_triplets": "gopro",
    "load_video_frames": "photo_clips",
    "read_manifest": "manifest",
    "scan_pairs": "gopro",
    "synthesize_camera_blur": "shake",
    "synthesize_camera_blur_torch": "shake",
    "write_manifest": "manifest",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
