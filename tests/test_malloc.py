"""mlip.tune_malloc: the allocator settings that keep per-step tensors from page-faulting."""

import json
import os
import subprocess
import sys

import pytest


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # musl and others
        return False


pytestmark = pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")

# Allocate, touch, free and re-allocate a 24 MB block with libc's malloc (numpy would ask for
# huge pages), counting the page faults of the second touch: with the settings the block comes
# back from the heap (no faults); glibc's defaults return it to the kernel and fault every
# page in again.
PROBE = """
import ctypes, ctypes.util, json, resource
from mlip import tune_malloc
applied = tune_malloc()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 24 << 20
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size); ctypes.memset(block, 1, size)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "again": tune_malloc(), "faults": faults}))
"""
PAGES = (24 << 20) // 4096


def probe(**env):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "MLIP_MALLOC_TUNING")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tuned_allocations_are_reused():
    tuned, default = probe(), probe(MLIP_MALLOC_TUNING="0")
    assert tuned["applied"] and tuned["again"]
    assert not default["applied"]
    # Counted in pages, or in huge pages where the kernel backs the heap with them.
    assert tuned["faults"] * 10 < default["faults"]
    assert tuned["faults"] < 0.05 * PAGES


@pytest.mark.parametrize(
    "env", [{"MALLOC_ARENA_MAX": "2"}, {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}]
)
def test_the_users_allocator_settings_win(env):
    assert not probe(**env)["applied"]
