"""ASE databases: SQLite (``.db``), JSON, and through ``ase-db-backends`` ASE-LMDB.

Rows are selected one at a time (``db.select`` is a generator), so a database of any size streams.
Key-value pairs and the row's ``data`` join ``atoms.info`` before the target mapping, so an energy
stored as ``REF_energy=...`` in either place is found like in an extxyz file.
"""

from __future__ import annotations

from pathlib import Path

from ._common import MAX_BAD_FRACTION, BadRecord, DataError, FrameStream
from .ase_generic import TargetKeys, atoms_to_record


def row_to_record(row, name: str, keys: TargetKeys) -> dict:
    atoms = row.toatoms()
    # The row's own attributes, not row.key_value_pairs: AtomsRow has properties (``charge``
    # among them) that shadow stored key-value pairs of the same name.
    kvp = {k: row.__dict__[k] for k in getattr(row, "_keys", ()) if k in row.__dict__}
    atoms.info.update(kvp)
    data = row.get("data") or {}
    atoms.info.update({k: v for k, v in data.items() if not hasattr(v, "shape") or v.ndim < 2})
    return atoms_to_record(atoms, name, keys)


def db_records(path: str, db_type: str | None, selection, keys: TargetKeys, extra=None):
    import ase.db

    # Only the LMDB backend takes readonly; it also keeps the lock file untouched.
    kwargs = {"readonly": True} if db_type == "aselmdb" else {}
    index = -1
    try:
        db = ase.db.connect(path, type=db_type or "extract_from_name", **kwargs)
        for index, row in enumerate(db.select(selection)):  # noqa: B007 (used below)
            name = f"{path}:{row.id}"
            try:
                record = row_to_record(row, name, keys)
                if extra is not None:
                    extra(row, record)
                yield record
            except BadRecord as err:
                yield err
    except BadRecord:
        raise
    except Exception as err:  # sqlite3/lmdb errors have no common base class
        if isinstance(err, DataError):
            raise
        raise DataError(
            f"{path}: cannot read the database ({db_type or 'type from extension'}) after "
            f"{index + 1} rows (corrupt or not a database?): "
            f"{type(err).__name__}: {err}"
        ) from err


def read_asedb(
    path: str | Path,
    selection=None,
    max_bad_fraction: float = MAX_BAD_FRACTION,
    supported=None,
    db_type: str | None = None,
    **options,
) -> FrameStream:
    """Frames of an ASE database, named ``path:row_id``. ``selection`` is ASE's query syntax.

    Options: ``energy_key``, ``forces_key``, ``stress_key``, ``virial_key``.
    """
    keys = TargetKeys.from_options(options)
    if options:
        raise TypeError(f"read_asedb: unknown options {sorted(options)}")
    path = str(path)
    if not Path(path).exists():
        raise DataError(f"{path}: no such database")
    return FrameStream(
        path, lambda: db_records(path, db_type, selection, keys), max_bad_fraction, supported
    )
