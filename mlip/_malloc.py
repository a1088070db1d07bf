"""Keep glibc's allocator from handing tensor memory back to the kernel between steps.

A training or MD step allocates and frees the same few-MB per-edge tensors hundreds of times.
glibc serves blocks above its mmap threshold with fresh ``mmap`` pages and trims the heap top
on ``free``, so every step page-faults its working set in again: on a 2-core CPU facet-s spent
up to a fifth of its time in the kernel and ran 1.2x (quiet machine) to 1.5x (loaded) slower
than with the settings below (docs/benchmarks/performance.md). Raising the thresholds keeps
freed blocks in the heap for reuse; the cost is that the process keeps its peak memory until it
exits.

Applied by the ``mlip`` CLI and by :func:`mlip.train.train`, and public as
``mlip.tune_malloc()`` for scripts of one's own; skipped where the user has set
any ``MALLOC_*`` variable or ``GLIBC_TUNABLES`` (their choice wins), where
``MLIP_MALLOC_TUNING=0``, and where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2): blocks up to 32 MB
# come from the heap. Trim only beyond 1 GB of free heap top; grow the heap 64 MB at a time.
SETTINGS = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 64 << 20}

_applied: bool | None = None


def _user_has_chosen() -> bool:
    return "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") for k in os.environ)


def tune_malloc() -> bool:
    """Apply :data:`SETTINGS` once per process; True when they are in force."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if (not sys.platform.startswith("linux") or os.environ.get("MLIP_MALLOC_TUNING") == "0"
            or _user_has_chosen()):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
    return _applied
