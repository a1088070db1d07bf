"""ASE-LMDB (``.aselmdb``): the format of OMol25, OMat24 and recent OC20 releases.

``ase-db-backends`` registers the type ``"aselmdb"`` with ``ase.db.connect`` (the extension is
recognised as well). OMol25 stores the total charge and the spin multiplicity in the row's
``data`` (fairchem copies it into ``atoms.info``) and often also as key-value pairs; ``data``
wins. Both are checked: an impossible multiplicity is a bad record, never a silent input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import keys as K
from ._common import MAX_BAD_FRACTION, BadRecord, DataError, FrameStream
from .ase_generic import TargetKeys
from .asedb import db_records

CHARGE_KEYS = ("charge", "total_charge")
SPIN_KEYS = ("spin", "multiplicity", "spin_multiplicity")


def _charge_spin(row, record: dict) -> None:
    data = row.get("data") or {}
    kvp = {k: row.__dict__[k] for k in getattr(row, "_keys", ()) if k in row.__dict__}
    for field, names in ((K.CHARGE, CHARGE_KEYS), (K.SPIN, SPIN_KEYS)):
        for source in (data, kvp):
            found = [source[n] for n in names if n in source]
            if found:
                try:
                    record[field] = np.float64(found[0])
                except (TypeError, ValueError):
                    raise BadRecord(record["name"], f"not a number: {found[0]!r}", field) from None
                break


def read_aselmdb(
    path: str | Path,
    selection=None,
    max_bad_fraction: float = MAX_BAD_FRACTION,
    supported=None,
    **options,
) -> FrameStream:
    """Frames of an ``.aselmdb`` file with charge and spin, named ``path:row_id``; ``path`` may
    also be a folder of them (an OMol25 split as downloaded: ``train_4M/*.aselmdb``), read in
    the order of their names.

    Options: ``energy_key``, ``forces_key``, ``stress_key``, ``virial_key``. The charge and spin
    are checked by :func:`~mlip.data.validate.check_charge_spin` in the record check.
    """
    keys = TargetKeys.from_options(options)
    if options:
        raise TypeError(f"read_aselmdb: unknown options {sorted(options)}")
    path = str(path)
    if not Path(path).exists():
        raise DataError(f"{path}: no such file")
    try:
        import ase_db_backends  # noqa: F401 (registers nothing, but fails clearly when absent)
    except ImportError as err:
        raise DataError(f"{path}: reading .aselmdb needs the ase-db-backends package") from err
    files = database_files(path)

    def records():
        for file in files:
            yield from db_records(file, "aselmdb", selection, keys, extra=_charge_spin)

    return FrameStream(path, records, max_bad_fraction, supported)


def database_files(path: str) -> list[str]:
    """``[path]`` for a file; the sorted ``*.aselmdb`` files of a folder (none is an error)."""
    if not Path(path).is_dir():
        return [path]
    files = sorted(str(p) for p in Path(path).glob("*.aselmdb"))
    if not files:
        raise DataError(f"{path}: a folder without .aselmdb files")
    return files
