"""Backend choice shared by every op: ``auto`` | ``torch`` | ``triton`` | ``compile``.

``auto`` takes Triton for CUDA tensors and the torch reference elsewhere. On a CPU the
reference is the right choice and is taken silently (DESIGN §5; logged at debug level). A
one-time warning per op appears only where Triton was wanted and cannot run: ``auto`` on CUDA
tensors without triton installed, or ``MLIP_KERNELS=triton`` (the user's request for Triton
wherever ``auto`` is used) on CPU tensors or without triton. ``MLIP_KERNELS=torch`` forces the
reference whatever was asked. An explicit ``backend="triton"`` that cannot run is an error.
Triton on CPU tensors runs only under ``TRITON_INTERPRET=1`` (the CPU tests); compiled Triton
needs a GPU. Triton is optional: without it everything imports and the reference runs.
"""

from __future__ import annotations

import logging
import os
import warnings

import torch

BACKENDS = ("auto", "torch", "triton", "compile")
_log = logging.getLogger("mlip.kernels")
_announced: set[str] = set()
_compiled: dict = {}

try:  # triton is an optional dependency
    import triton  # noqa: F401

    HAS_TRITON = True
except ImportError:  # pragma: no cover - depends on the environment
    HAS_TRITON = False


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def select_backend(op: str, backend: str, device: torch.device) -> str:
    """The backend that runs ``op`` for tensors on ``device``: "torch", "triton" or "compile"."""
    if backend not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of {BACKENDS}, got {backend!r}")
    forced = os.environ.get("MLIP_KERNELS", "").strip().lower()
    if forced not in ("", "torch", "auto", "triton"):
        raise ValueError(f"MLIP_KERNELS must be 'torch', 'triton' or unset, got {forced!r}")
    if forced == "torch":
        return "torch"
    if backend == "auto":
        if HAS_TRITON and (device.type == "cuda" or (forced == "triton" and interpreting())):
            _announce(op, f"{op}: using the Triton kernel on {device}", warn=False)
            return "triton"
        why = "triton is not installed" if not HAS_TRITON else f"tensors are on {device.type}"
        # Warn only where Triton was wanted: on a GPU, or asked for by MLIP_KERNELS=triton.
        wanted = device.type == "cuda" or forced == "triton"
        _announce(op, f"{op}: using the torch reference ({why})", warn=wanted)
        return "torch"
    if backend == "triton":
        if not HAS_TRITON:
            raise RuntimeError(f"{op}: backend='triton' but triton is not installed")
        if device.type != "cuda" and not interpreting():
            raise RuntimeError(
                f"{op}: backend='triton' needs CUDA tensors (got {device.type}); on CPU, Triton "
                "runs only under the interpreter: set TRITON_INTERPRET=1 before importing triton"
            )
    return backend


def _announce(op: str, message: str, warn: bool) -> None:
    if op in _announced:
        return
    _announced.add(op)
    if warn:
        warnings.warn(message, stacklevel=3)
    else:
        _log.debug(message)


def compiled(fn):
    """``torch.compile`` of a reference function, built once (the ``compile`` backend)."""
    if fn not in _compiled:
        _compiled[fn] = torch.compile(fn, dynamic=True)
    return _compiled[fn]
