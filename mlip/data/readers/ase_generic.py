"""Anything ASE reads (VASP OUTCAR, ASE JSON, ...), with the target-key mapping every ASE-based
reader shares.

Real files hide their targets under many names: ``force`` (ACE's TiAl set), ``REF_forces`` (MACE
convention), ``DFT_energy``, a ``virial`` in eV instead of a stress, or values held by a
SinglePointCalculator. :func:`atoms_to_record` looks in the calculator first, then in
``atoms.info`` / ``atoms.arrays`` under the caller's key or the known aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import keys as K
from ..graph import atoms_to_frame, voigt_to_matrix
from ._common import DECOMPRESS_ERRORS, MAX_BAD_FRACTION, BadRecord, DataError, FrameStream

ENERGY_ALIASES = ("energy", "REF_energy", "DFT_energy", "dft_energy", "total_energy")
FORCES_ALIASES = ("forces", "force", "REF_forces", "DFT_forces", "dft_forces", "REF_force")
STRESS_ALIASES = ("stress", "REF_stress", "DFT_stress", "dft_stress")
VIRIAL_ALIASES = ("virial", "virials", "REF_virial", "DFT_virial", "dft_virial")


@dataclass(frozen=True)
class TargetKeys:
    """Where to find targets. A key given explicitly must be present; aliases are optional."""

    energy_key: str | None = None
    forces_key: str | None = None
    stress_key: str | None = None
    virial_key: str | None = None

    @classmethod
    def from_options(cls, options: dict) -> TargetKeys:
        return cls(**{f: options.pop(f, None) for f in cls.__dataclass_fields__})


def _lookup(name, results, store, explicit, aliases, key):
    if explicit is not None:
        for source in (store, results):
            if explicit in source:
                return source[explicit]
        raise BadRecord(name, f"missing (asked for '{explicit}')", key)
    if key in results:
        return results[key]
    for alias in aliases:
        if alias in store:
            return store[alias]
    return None


def atoms_to_record(atoms, name: str, keys: TargetKeys = TargetKeys()) -> dict:
    """A frame from ``atoms`` with targets found through ``keys``; raises :class:`BadRecord`."""
    try:
        frame = atoms_to_frame(atoms, name=name)
    except (ValueError, TypeError, KeyError) as err:
        raise BadRecord(name, f"unreadable: {err}") from None
    frame["name"] = name
    calc = getattr(atoms, "calc", None)
    results = dict(getattr(calc, "results", None) or {})
    info, arrays = atoms.info, atoms.arrays
    try:
        energy = _lookup(name, results, info, keys.energy_key, ENERGY_ALIASES, K.ENERGY)
        forces = _lookup(name, results, arrays, keys.forces_key, FORCES_ALIASES, K.FORCES)
        if keys.virial_key is None:
            stress = _lookup(name, results, info, keys.stress_key, STRESS_ALIASES, K.STRESS)
        else:
            stress = None
        virial = None
        if stress is None and keys.stress_key is None:
            virial = _lookup(name, {}, info, keys.virial_key, VIRIAL_ALIASES, K.VIRIAL)
        for key, value in ((K.ENERGY, energy), (K.FORCES, forces)):
            frame.pop(key, None)
            if value is not None:
                frame[key] = np.array(value, dtype=np.float64)
        frame.pop(K.STRESS, None)
        if stress is not None:
            frame[K.STRESS] = voigt_to_matrix(stress)
        elif virial is not None:
            frame[K.STRESS] = virial_to_stress(virial, frame[K.CELL], name)
    except (ValueError, TypeError) as err:
        raise BadRecord(name, f"unreadable target: {err}") from None
    return frame


def virial_to_stress(virial, cell, name: str = "") -> np.ndarray:
    """stress = -virial / volume (virial in eV, stress in eV/Å^3, ASE sign)."""
    volume = abs(np.linalg.det(np.asarray(cell, dtype=np.float64).reshape(3, 3)))
    if volume < 1e-9:
        raise BadRecord(name, "a virial needs a 3D periodic cell to become a stress", K.VIRIAL)
    return -voigt_to_matrix(virial) / volume


def read_ase(
    path: str | Path,
    format: str | None = None,
    max_bad_fraction: float = MAX_BAD_FRACTION,
    supported=None,
    **options,
) -> FrameStream:
    """Frames from any file ``ase.io.iread`` understands, e.g. ``format="vasp-out"``.

    Options: ``energy_key``, ``forces_key``, ``stress_key``, ``virial_key`` (see
    :class:`TargetKeys`). A parser failure midway is a :class:`DataError` naming the frame.
    """
    keys = TargetKeys.from_options(options)
    if options:
        raise TypeError(f"read_ase: unknown options {sorted(options)}")
    path = str(path)

    def records():
        import ase.io

        index = 0
        try:
            for index, atoms in enumerate(ase.io.iread(path, index=":", format=format)):
                try:
                    yield atoms_to_record(atoms, f"{path}:{index}", keys)
                except BadRecord as err:
                    yield err
        except (*DECOMPRESS_ERRORS, ValueError, IndexError, KeyError, StopIteration) as err:
            raise DataError(
                f"{path}: cannot be read past frame {index} as {format or 'auto-detected format'}"
                f" (truncated or corrupt?): {type(err).__name__}: {err}"
            ) from err
        if format == "vasp-out":
            cut = _outcar_cut(path)
            if cut is not None:
                yield BadRecord(f"{path}:{cut}", "the file ends inside this ionic step (a run "
                                "cut off or a partial copy): no energy and forces", "OUTCAR")

    return FrameStream(path, records, max_bad_fraction, supported)


def _outcar_cut(path: str) -> int | None:
    """The index of an ionic step that an OUTCAR starts but never finishes, or None.

    ASE's reader silently drops such a step. Each step VASP completes prints the forces
    (``TOTAL-FORCE``) and then the energy (``free  energy   TOTEN``); a normal end prints
    ``General timing``. A file that ends otherwise lost its last step."""
    from ._common import open_text

    forces = energies = 0
    finished = False
    with open_text(path) as f:
        for line in f:
            if "TOTAL-FORCE" in line:
                forces += 1
            elif "free  energy   TOTEN" in line:
                energies += 1
            elif "General timing" in line:
                finished = True
    complete = min(forces, energies)
    return None if finished and complete >= forces else complete
