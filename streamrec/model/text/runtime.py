"""Where and how the encoder runs: device, dtype, backend, CPU threads, int8 quantization."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from streamrec.model.errors import EncoderError

__all__ = [
    "available_cpus",
    "cpu_computes_bf16",
    "quantized",
    "resolve_backend",
    "resolve_device",
    "resolve_dtype",
]

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}  # fmt: skip


def resolve_backend(backend: str, device: str, dtype: str) -> str:
    from streamrec.model.text.onnx_runtime import onnx_available

    if backend not in ("auto", "torch", "onnx"):
        raise EncoderError(f"'backend' must be 'auto', 'torch' or 'onnx', got {backend!r}")
    fits = device == "cpu" and dtype == "float32"
    if backend == "onnx" and not fits:
        raise EncoderError(f"backend 'onnx' runs float32 on the CPU, got {dtype} on {device!r}")
    if backend == "onnx" and not onnx_available():
        raise EncoderError("backend 'onnx' needs the packages onnxruntime and onnx, got them not installed")
    if backend == "auto":
        return "onnx" if fits and onnx_available() else "torch"
    return backend


def quantized(net: Any) -> Any:
    """`net` with int8 linear layers: weights quantized per output channel, activations per batch."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces the move of this API to torchao
        return quantize_dynamic(  # type: ignore[no-untyped-call]
            net, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def available_cpus() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    try:
        # A container's CPU quota (cgroup v2) is often below the CPUs it can see.
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cpus


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        kind = None
    if kind not in ("cpu", "cuda") or (kind == "cuda" and not torch.cuda.is_available()):
        seen = f"{device!r} (CUDA is not available)" if kind == "cuda" else repr(device)
        raise EncoderError(f"'device' must be 'auto', 'cpu' or an available 'cuda[:N]', got {seen}")
    return device


def cpu_computes_bf16() -> bool:
    """True on CPUs (Linux) that multiply bf16 natively: AVX-512 BF16 dot products (AMD Zen 4 and
    later, Intel Cooper Lake and later) or AMX tiles. Elsewhere bf16 is emulated, slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        if not device.startswith("cuda"):
            # bf16 vectors stay within cosine 0.9999 of fp32 on MiniLM, and where the CPU
            # multiplies bf16 natively a review is read 1.3-1.5x faster (docs/performance.md).
            return torch.bfloat16 if cpu_computes_bf16() else torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in _DTYPES:
        raise EncoderError(f"'dtype' must be 'auto', 'int8' or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]
