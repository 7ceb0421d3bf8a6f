"""Keep the streaming pipeline's memory flat under glibc.

glibc gives each thread that allocates its own malloc arena, and every arena keeps its own
freed blocks. The pipeline's decode, restore and encode threads (and the codec libraries'
own threads) each pass frames of several MB around, so a run of a 720p video held ~330 MB
more than the network alone needed, growing over the first hundred frames. Sharing one
arena between all threads removes that (measured with ``tools/bench_pipeline.py``) at no
measurable cost in speed, because the network's large tensors are mapped, not pooled.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_ARENA_MAX = -8  # mallopt() parameter number, from glibc's <malloc.h>


def share_malloc_arenas(count: int = 1) -> bool:
    """Limit glibc to ``count`` malloc arenas for threads started from now on.

    Returns False (and changes nothing) where the C library is not glibc. The setting is
    process-wide; threads that already own an arena keep it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, count) == 1
