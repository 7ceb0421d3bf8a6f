"""tools/setup.sh's choice of PyTorch build (``--dry-run``: prints the pip commands only)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "tools" / "setup.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PIP = ".venv/bin/python -m pip install --quiet"


def dry_run(tmp_path: Path, gpu: bool, **env: str) -> list[str]:
    """setup.sh --dry-run's output, with a fake ``nvidia-smi`` first on PATH that finds a
    GPU (``gpu``) or fails as it does without one."""
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n" if gpu
                   else "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    smi.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_")}
    # a dry run must not need Python, let alone create or change a virtual environment
    environ.update(PATH=f"{fake}{os.pathsep}{os.environ['PATH']}",
                   PYTHON="/nonexistent/python3", **env)
    done = subprocess.run(["bash", str(SETUP), "--dry-run"], env=environ, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_without_a_gpu_the_cpu_index_comes_first_then_the_default_one(tmp_path):
    if list(Path("/proc/driver/nvidia/gpus").glob("*")):
        pytest.skip("this machine has an NVIDIA driver with a GPU")
    out = dry_run(tmp_path, gpu=False)
    assert f"would run: {PIP} --index-url {CPU_INDEX} torch==2.13.0" in out
    assert f"or, if {CPU_INDEX} cannot be reached: {PIP} torch==2.13.0" in out


def test_with_a_gpu_the_default_index_is_used(tmp_path):
    out = dry_run(tmp_path, gpu=True)
    assert f"would run: {PIP} torch==2.13.0" in out
    assert not any(CPU_INDEX in line for line in out)


def test_the_user_chooses_the_index_and_the_version(tmp_path):
    cuda = "https://download.pytorch.org/whl/cu128"
    out = dry_run(tmp_path, gpu=False, TORCH_INDEX_URL=cuda, TORCH_SPEC="torch==2.12.1")
    assert f"would run: {PIP} --index-url {cuda} torch==2.12.1" in out
    assert not any(CPU_INDEX in line for line in out)
    (tmp_path / "default").mkdir()
    out = dry_run(tmp_path / "default", gpu=False, TORCH_INDEX_URL="default")
    assert f"would run: {PIP} torch==2.13.0" in out
    assert not any(CPU_INDEX in line for line in out)
