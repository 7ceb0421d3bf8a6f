"""tools/bench/bench_model.py from the outside: a measurement that fails ends the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench" / "bench_model.py"


def test_a_measurement_that_fails_is_one_error_line_not_a_hang(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--frames-only", "--frame-repeats", "1", "--size",
         "64x48", "--frame-variants", "after", "--frame-weights",
         str(tmp_path / "missing.safetensors")],
        cwd=BENCH.parent, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: _measure_frame ended without a result (exit code 1)")


def test_a_size_that_is_not_width_by_height_is_refused():
    done = subprocess.run([sys.executable, str(BENCH), "--size", "320"], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "expected WIDTHxHEIGHT, not '320'" in done.stderr
