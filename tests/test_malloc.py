"""The pipeline's threads share one glibc malloc arena."""

import subprocess
import sys

import pytest

from refdeblur_video import malloc

# four threads that allocate while all alive, then glibc's own count of its arenas
ARENA_COUNT = """
import ctypes, sys, threading
from refdeblur_video.malloc import share_malloc_arenas
if sys.argv[1] == "share":
    assert share_malloc_arenas()
barrier = threading.Barrier(4)
def work():
    blocks = [bytearray(2000) for _ in range(200)]
    barrier.wait()
    del blocks
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def _arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ARENA_COUNT, mode], capture_output=True,
                          text=True, check=True)
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_threads_share_one_arena_only_when_asked():
    assert _arenas("default") > 1
    assert _arenas("share") == 1


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(malloc.sys, "platform", "darwin")
    assert malloc.share_malloc_arenas() is False

    def no_libc(*_args, **_kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(malloc.sys, "platform", "linux")
    monkeypatch.setattr(malloc.ctypes, "CDLL", no_libc)
    assert malloc.share_malloc_arenas() is False
