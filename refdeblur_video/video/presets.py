"""The encoder speed presets ``--preset`` takes: x264's names, which the other encoders'
speed settings are mapped from (no PyAV needed, so that options are checked at once)."""

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
