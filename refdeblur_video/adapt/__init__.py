"""Test-time adaptation (``refdeblur-video --adapt``): a video's own sharp frames, blurred
to match its blurry ones, fine-tune a copy of the network before it restores the video.

- :mod:`.reservoir`: one decoding pass keeping a bounded sample of sharp-frame regions;
- :mod:`.fit`: the camera-shake strength (and noise) that matches the video's blur;
- :mod:`.samples`: training crops from the regions, by the training blur generators;
- :mod:`.tune`: the time-budgeted fine-tuning and the held-back check;
- :mod:`.entry`: :func:`adapt_restorer`, what the pipeline calls.
"""

from .entry import AdaptOutcome, adapt_restorer, adapted_path, check_save_path, save_adapted
from .settings import AdaptSettings, settings_for

__all__ = ["AdaptOutcome", "AdaptSettings", "adapt_restorer", "adapted_path",
           "check_save_path", "save_adapted", "settings_for"]
