"""Where the torch engine runs: ``--device auto|cpu|cuda|mps``.

ONNX Runtime runs on the CPU here (the package installed is its CPU build), so a GPU
means the torch engine. ``auto`` picks CUDA where torch sees one, and looks for an NVIDIA
driver before it imports torch, so that a machine without one never pays torch's import
(2 s) on the default, ONNX path.
"""

from __future__ import annotations

import os

from searchkit.errors import ModelError, UsageError

__all__ = ["DEVICES", "choose", "cpu_cores"]

DEVICES = ("auto", "cpu", "cuda", "mps")
_NVIDIA = ("/dev/nvidiactl", "/proc/driver/nvidia/version")


def choose(device: str | None, backend: str, asked: bool) -> tuple[str, str]:
    """The (backend, device) to load with: `backend` is the one asked for (`asked`) or the
    default; a GPU device means torch, and one that torch cannot see is an error."""
    device = (device or "auto").lower()
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "cpu" or (device == "auto" and asked and backend != "torch"):
        return backend, "cpu"
    if device == "auto":
        return ("torch", "cuda") if _cuda_visible() else (backend, "cpu")
    if asked and backend != "torch":
        raise UsageError(
            f"--device {device} runs the torch engine, and --backend {backend} runs on the CPU: "
            "use --backend torch, or leave --backend out"
        )
    if not _torch_sees(device):
        import torch

        raise ModelError(
            f"--device {device}: torch {torch.__version__} sees no {device.upper()} device here; "
            "use --device cpu (or auto)"
        )
    return "torch", device


def _cuda_visible() -> bool:
    if not any(os.path.exists(path) for path in _NVIDIA):
        return False
    return _torch_sees("cuda")


def _torch_sees(device: str) -> bool:
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available())
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
