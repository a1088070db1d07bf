"""Atomic writes: a temporary file beside the target, renamed into place only when complete.

A kill mid-write leaves the previous file (or none), never a half-written one. The temporary
file gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask), not
``mkstemp``'s private 0600, so outputs are readable by the user's group as usual.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _plain_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _plain_mode())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
