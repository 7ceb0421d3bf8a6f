"""Choosing the compute device and the autocast precision."""

from __future__ import annotations

import torch

from ..errors import UserError, unknown_device


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; explicit names are checked for availability."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise unknown_device(name) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device '{name}' requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device '{name}' does not exist ({torch.cuda.device_count()} GPUs)")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise UserError("device 'mps' requested but MPS is not available")
    return device


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX); CPUs that would only
    emulate it run bf16 slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in checks if hasattr(torch.cpu, name))
    except RuntimeError:
        return False


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The mixed-precision type: bf16 on GPUs and CPUs that support it natively, fp16 on
    other GPUs, none on other CPUs or when disabled. On a CPU with AVX512-BF16 the network
    runs much faster in bf16 than in float32, with differences an 8-bit output hardly shows
    (``tools/bench/bench_model.py``; docs/RESULTS.md)."""
    if not enabled:
        return None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_supports_bf16() else None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16
