"""MPTrj (``MPtrj_2022.9_full.json``, Deng et al. 2023, CHGNet's training set).

The file is one JSON object ``{mp_id: {frame_id: {structure, uncorrected_total_energy,
corrected_total_energy, energy_per_atom, ef_per_atom, force, stress, magmom, ...}}}`` of about
11 GB. It is parsed incrementally with ``ijson``: only the frame being read is ever built, so
memory stays flat whatever the file size.

Units at the boundary (DESIGN §6): energies eV, forces eV/Å; the stress is VASP's, in kBar and
positive under compression, so σ_ASE = -0.1 · GPa · σ_kBar in eV/Å³.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.data import atomic_numbers as SYMBOL_TO_Z
from ase.units import GPa

from .. import keys as K
from ._common import (
    DECOMPRESS_ERRORS,
    MAX_BAD_FRACTION,
    BadRecord,
    DataError,
    FrameStream,
    open_binary,
)

KBAR_TO_EV_A3 = -0.1 * GPa  # kBar (compression positive) -> eV/Å^3 (tension positive)
ENERGY_CHOICES = (
    "corrected_total_energy",
    "uncorrected_total_energy",
    "energy_per_atom",  # corrected, per atom: multiplied by the atom count
    "ef_per_atom",  # formation energy per atom: multiplied by the atom count
)


def iter_mptrj_items(path: str):
    """Yield ``(mp_id, frame_id, frame_dict)`` while holding only one frame in memory."""
    import ijson

    try:
        with open_binary(path) as f:
            parser = ijson.parse(f, use_float=True)
            builder = mp_id = frame_id = None
            level = depth = 0  # level: open containers above the frame; depth: inside it
            for _, event, value in parser:
                if builder is not None:
                    builder.event(event, value)
                    if event in ("start_map", "start_array"):
                        depth += 1
                    elif event in ("end_map", "end_array"):
                        depth -= 1
                        if depth == 0:
                            yield mp_id, frame_id, builder.value
                            builder = None
                elif event == "map_key":
                    if level == 1:
                        mp_id, frame_id = value, None
                    else:
                        frame_id = value
                elif event in ("start_map", "start_array") and level == 2:
                    builder, depth = ijson.ObjectBuilder(), 1
                    builder.event(event, value)
                elif event in ("start_map", "start_array"):
                    level += 1
                elif event in ("end_map", "end_array"):
                    level -= 1
    except ijson.JSONError as err:
        where = f" after {mp_id}/{frame_id}" if frame_id else ""
        msg = f"{path}: invalid MPTrj JSON{where} (truncated or corrupt?): {err}"
        raise DataError(msg) from err
    except DECOMPRESS_ERRORS as err:
        raise DataError(f"{path}: cannot read or decompress: {err}") from err


def mptrj_to_record(item: dict, name: str, energy: str = "corrected_total_energy") -> dict:
    """One MPTrj frame dict as a frame; raises :class:`BadRecord` naming the key."""
    try:
        structure = item["structure"]
        lattice = structure["lattice"]
        sites = structure["sites"]
    except (KeyError, TypeError):
        raise BadRecord(name, "missing or malformed", "structure") from None
    try:
        cell = np.array(lattice["matrix"], dtype=np.float64)
        positions = np.array([s["xyz"] for s in sites], dtype=np.float64)
        numbers = []
        for s in sites:
            species = s["species"]
            if len(species) != 1:
                raise BadRecord(name, "a disordered site cannot be a training frame", "structure")
            numbers.append(SYMBOL_TO_Z[species[0]["element"]])
    except BadRecord:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise BadRecord(name, f"malformed site or lattice ({err})", "structure") from None
    frame = {
        K.POSITIONS: positions,
        K.ATOMIC_NUMBERS: np.array(numbers, dtype=np.int64),
        K.CELL: cell,
        K.PBC: np.array(lattice.get("pbc", (True, True, True)), dtype=bool),
        "name": name,
    }
    value = item.get(energy)
    if value is None:
        raise BadRecord(name, "missing", energy)
    try:
        e = np.float64(value)
        frame[K.ENERGY] = e * len(numbers) if energy.endswith("_per_atom") else e
        if item.get("force") is not None:
            frame[K.FORCES] = np.array(item["force"], dtype=np.float64)
        if item.get("stress") is not None:
            frame[K.STRESS] = KBAR_TO_EV_A3 * np.array(item["stress"], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BadRecord(name, f"not numeric ({err})") from None
    return frame


def read_mptrj(
    path: str | Path,
    energy: str = "corrected_total_energy",
    max_bad_fraction: float = MAX_BAD_FRACTION,
    supported=None,
) -> FrameStream:
    """Frames of an MPTrj JSON file (also .gz/.xz/.bz2), named ``path:mp_id/frame_id``.

    ``energy`` picks the target: one of :data:`ENERGY_CHOICES`.
    """
    if energy not in ENERGY_CHOICES:
        raise ValueError(f"energy must be one of {ENERGY_CHOICES}, got {energy!r}")
    path = str(path)
    if not Path(path).exists():
        raise DataError(f"{path}: no such file")

    def records():
        for mp_id, frame_id, item in iter_mptrj_items(path):
            try:
                yield mptrj_to_record(item, f"{path}:{mp_id}/{frame_id}", energy)
            except BadRecord as err:
                yield err

    return FrameStream(path, records, max_bad_fraction, supported)
