"""refdeblur-video: reference-based motion deblurring for videos and photos."""

__version__ = "0.1.0"
