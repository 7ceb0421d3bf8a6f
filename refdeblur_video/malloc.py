"""Keep the streaming pipeline's memory down under glibc.

glibc gives threads that allocate their own malloc arenas (up to 8 per core), and every
arena keeps its own freed blocks. The pipeline's decode, restore and encode threads, and
the codecs' and PyTorch's worker threads, pass frames and tensors of several MB around, so
each arena ends up holding its own pool of them. Sharing one arena between all threads
lowers the pipeline's peak RSS by hundreds of MB at 720p, at no measurable cost in speed
(``tools/bench/bench_pipeline.py``; figures in docs/RESULTS.md).
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
