"""Extended XYZ, plain or compressed (.xz, .gz, .bz2), streamed one frame at a time.

The file is split into frames here (count line, comment line, N atom lines) and each frame is
parsed by ASE alone. That keeps memory to one frame, needs no seeking (ASE's own ``iread`` indexes
the file first, which re-decompresses an .xz file for every frame), lets a malformed frame be
skipped and counted, and tells a truncated file from a bad frame.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from ._common import (
    DECOMPRESS_ERRORS,
    MAX_BAD_FRACTION,
    BadRecord,
    DataError,
    FrameStream,
    open_text,
)
from .ase_generic import TargetKeys, atoms_to_record


def split_frames(path: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(frame index, first line number, frame text)``; DataError if truncated."""
    index, line_no = 0, 0
    try:
        with open_text(path) as f:
            while True:
                head = f.readline()
                line_no += 1
                if not head:
                    return
                if not head.strip():
                    continue  # trailing blank lines
                try:
                    n = int(head.split()[0])
                except ValueError:
                    raise DataError(
                        f"{path}:{index}: line {line_no} should hold the atom count of frame "
                        f"{index}, found {head[:60].rstrip()!r} (corrupt file?)"
                    ) from None
                lines = [head]
                for _ in range(n + 1):
                    line = f.readline()
                    if not line:
                        raise DataError(
                            f"{path}:{index}: file ends inside frame {index} (starting at line "
                            f"{line_no}): {len(lines) - 2} of {n} atom lines (truncated file?)"
                        )
                    lines.append(line)
                yield index, line_no, "".join(lines)
                line_no += n + 1
                index += 1
    except DECOMPRESS_ERRORS as err:
        raise DataError(f"{path}: cannot decompress or decode past frame {index}: {err}") from err


def _parse(text: str):
    from ase.io.extxyz import read_xyz

    return next(read_xyz(io.StringIO(text), index=0))


def extxyz_records(path: str, keys: TargetKeys | None = None, name_prefix: str | None = None):
    """Records (frames or :class:`BadRecord`) of an extxyz file, named ``path:index``."""
    keys = keys or TargetKeys()
    for index, line_no, text in split_frames(path):
        name = f"{name_prefix or path}:{index}"
        try:
            atoms = _parse(text)
        except Exception as err:  # any parser failure inside one frame is that frame's fault
            yield BadRecord(name, f"cannot parse frame at line {line_no}: {err}")
            continue
        try:
            yield atoms_to_record(atoms, name, keys)
        except BadRecord as err:
            yield err


def read_extxyz(
    path: str | Path, max_bad_fraction: float = MAX_BAD_FRACTION, supported=None, **options
) -> FrameStream:
    """Frames of an extxyz file. Options: ``energy_key``, ``forces_key``, ``stress_key``,
    ``virial_key`` (defaults: calculator results, then the aliases in ``ase_generic``)."""
    keys = TargetKeys.from_options(options)
    if options:
        raise TypeError(f"read_extxyz: unknown options {sorted(options)}")
    path = str(path)
    return FrameStream(path, lambda: extxyz_records(path, keys), max_bad_fraction, supported)
