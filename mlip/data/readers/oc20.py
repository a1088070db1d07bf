"""OC20 S2EF as distributed: chunks ``N.extxyz`` (or ``.extxyz.xz``) each with ``N.txt`` (or
``.txt.xz``) holding ``random<system_id>,frame<frame>,<reference_energy>`` per frame, in order.

Atoms keep their tags (0 subsurface, 1 surface, 2 adsorbate) and the fixed-atom mask (ASE turns
the extxyz ``move_mask`` column into a FixAtoms constraint). Forces are the raw DFT forces, also
on fixed atoms. The S2EF target is the *referenced* energy, total minus the clean-slab and
gas-phase reference of that system: ``energy="referenced"`` (default) or ``"total"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import keys as K
from ._common import (
    DECOMPRESS_ERRORS,
    MAX_BAD_FRACTION,
    BadRecord,
    DataError,
    FrameStream,
    open_text,
)
from .ase_generic import TargetKeys
from .extxyz import extxyz_records


def companion_txt(path: str) -> str:
    """The ``.txt`` (or ``.txt.xz``) beside an extxyz chunk."""
    stem = path[: -len(".xz")] if path.endswith(".xz") else path
    stem = stem[: -len(".extxyz")] if stem.endswith(".extxyz") else stem
    for candidate in (stem + ".txt", stem + ".txt.xz"):
        if Path(candidate).exists():
            return candidate
    raise DataError(f"{path}: OC20 chunk without its reference file {stem}.txt[.xz]")


def _reference_lines(txt: str):
    try:
        with open_text(txt) as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    yield line_no, line.strip()
    except DECOMPRESS_ERRORS as err:
        raise DataError(f"{txt}: cannot read or decompress: {err}") from err


def _parse_reference(txt: str, line_no: int, line: str) -> tuple[str, str, float]:
    parts = line.split(",")
    if len(parts) != 3:
        raise DataError(f"{txt}:{line_no}: expected 'system,frame,reference', got {line!r}")
    try:
        return parts[0], parts[1], float(parts[2])
    except ValueError:
        raise DataError(f"{txt}:{line_no}: reference energy is not a number: {line!r}") from None


def read_oc20(
    path: str | Path,
    energy: str = "referenced",
    txt: str | None = None,
    max_bad_fraction: float = MAX_BAD_FRACTION,
    supported=None,
) -> FrameStream:
    """Frames of one OC20 S2EF chunk, named ``path:index``; line ``index`` of the ``.txt``
    gives its system, frame and reference. Frames and lines must pair up one to one."""
    if energy not in ("referenced", "total"):
        raise ValueError(f"energy must be 'referenced' or 'total', got {energy!r}")
    path = str(path)
    if not Path(path).exists():
        raise DataError(f"{path}: no such file")
    txt = txt or companion_txt(path)

    def records():
        refs = _reference_lines(txt)
        for record in extxyz_records(path, TargetKeys()):
            try:
                line_no, line = next(refs)
            except StopIteration:
                name = record.name if isinstance(record, BadRecord) else record["name"]
                raise DataError(
                    f"{txt}: fewer reference lines than frames in {path} ({name})"
                ) from None
            _, _, reference = _parse_reference(txt, line_no, line)
            if isinstance(record, BadRecord):
                yield record
                continue
            if energy == "referenced":
                if K.ENERGY not in record:
                    yield BadRecord(record["name"], "missing, needed to reference", K.ENERGY)
                    continue
                record[K.ENERGY] = np.float64(record[K.ENERGY] - reference)
            yield record
        extra = next(refs, None)
        if extra is not None:
            raise DataError(f"{txt}:{extra[0]}: more reference lines than frames in {path}")

    return FrameStream(path, records, max_bad_fraction, supported)
