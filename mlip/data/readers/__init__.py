"""Readers: one module per format, each streaming frames (DESIGN §2) named ``file:frame``.

``read_frames(path, format=None, **options)`` picks the reader from ``format`` or the file name;
every reader returns a :class:`FrameStream` that skips bad records, counts them and stops with a
:class:`DataError` past ``max_bad_fraction`` (default 1%).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._common import MAX_BAD_FRACTION, BadRecord, DataError, FrameStream, check_record
from .ase_generic import TargetKeys, read_ase, virial_to_stress
from .asedb import read_asedb
from .aselmdb import read_aselmdb
from .extxyz import read_extxyz
from .mptrj import read_mptrj
from .oc20 import read_oc20


def read_hdf5(path: str | Path, **options) -> FrameStream:
    """An HDF5 cache written by ``mlip convert`` (:func:`mlip.data.hdf5.read_hdf5`)."""
    from ..hdf5 import read_hdf5 as read  # h5py is imported only when a cache is read

    return read(path, **options)


READERS: dict[str, Callable[..., FrameStream]] = {
    "extxyz": read_extxyz,
    "asedb": read_asedb,
    "aselmdb": read_aselmdb,
    "mptrj": read_mptrj,
    "oc20": read_oc20,
    "ase": read_ase,
    "hdf5": read_hdf5,
}


def register_reader(name: str, reader: Callable[..., FrameStream]) -> None:
    """Make ``reader(path, **options) -> FrameStream`` available as ``format=name``."""
    READERS[name] = reader


def guess_format(path: str | Path) -> str:
    """The reader for a file name; OUTCARs and other ASE formats need ``format`` or ``ase``."""
    if Path(path).is_dir() and any(Path(path).glob("*.aselmdb")):
        return "aselmdb"  # an OMol25 / OMat24 split: a folder of .aselmdb files
    name = Path(path).name.lower()
    for ext in (".xz", ".gz", ".bz2"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith((".extxyz", ".xyz")):
        stem = str(path)[: str(path).lower().rindex(".extxyz")] if ".extxyz" in name else None
        if stem and (Path(stem + ".txt").exists() or Path(stem + ".txt.xz").exists()):
            return "oc20"
        return "extxyz"
    if name.endswith(".aselmdb") or name.endswith(".lmdb"):
        return "aselmdb"
    if name.endswith((".h5", ".hdf5")):
        return "hdf5"
    if name.endswith(".db"):
        return "asedb"
    if name.endswith(".json") and "mptrj" in name:
        return "mptrj"
    if "outcar" in name:
        return "ase"
    raise DataError(
        f"{path}: cannot tell the format from the name; pass format= one of {sorted(READERS)}"
    )


def read_frames(path: str | Path, format: str | None = None, **options) -> FrameStream:
    """Stream the frames of ``path`` with the reader for ``format`` (guessed when None).

    ``format`` is a reader name (``extxyz``, ``asedb``, ``aselmdb``, ``mptrj``, ``oc20``,
    ``hdf5``, ``ase``) or any ASE format name (``vasp-out``, ``json``...), read through ``ase.io``.
    Options go to the reader, e.g. ``energy_key="REF_energy"``, ``max_bad_fraction=0.05``.
    """
    path = str(path)
    if not Path(path).exists():
        raise DataError(f"{path}: no such file")
    fmt = format or guess_format(path)
    if fmt in READERS:
        if fmt == "ase" and "outcar" in Path(path).name.lower():
            options.setdefault("format", "vasp-out")
        return READERS[fmt](path, **options)
    return read_ase(path, format=fmt, **options)


__all__ = [
    "MAX_BAD_FRACTION",
    "READERS",
    "BadRecord",
    "DataError",
    "FrameStream",
    "TargetKeys",
    "check_record",
    "guess_format",
    "read_ase",
    "read_asedb",
    "read_aselmdb",
    "read_extxyz",
    "read_frames",
    "read_hdf5",
    "read_mptrj",
    "read_oc20",
    "register_reader",
    "virial_to_stress",
]
