"""Refuse bad structures before any tensor work, with an error that says what and where."""

from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols

MIN_DISTANCE = 0.1  # Å; closer atoms are a broken structure, not physics


class StructureError(ValueError):
    """A structure that cannot be turned into a graph. The message names the structure."""


def _where(name: str | None) -> str:
    return f"structure {name}" if name else "structure"


def check_frame(
    frame: dict,
    name: str | None = None,
    supported: list[int] | tuple[int, ...] | None = None,
    min_distance: float = MIN_DISTANCE,
) -> None:
    """Raise :class:`StructureError` if ``frame`` (numpy arrays, DESIGN §2 keys) is unusable."""
    where = _where(name or frame.get("name"))
    pos = np.asarray(frame["positions"], dtype=np.float64)
    z = np.asarray(frame["atomic_numbers"])
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise StructureError(f"{where}: positions must have shape (N, 3), got {pos.shape}")
    if len(pos) == 0:
        raise StructureError(f"{where}: has no atoms")
    if z.shape != (len(pos),):
        raise StructureError(
            f"{where}: {len(pos)} positions but atomic_numbers has shape {z.shape}"
        )
    if not np.isfinite(pos).all():
        bad = int(np.nonzero(~np.isfinite(pos).all(1))[0][0])
        raise StructureError(f"{where}: position of atom {bad} is NaN or infinite")
    if (z < 1).any() or (z >= len(chemical_symbols)).any():
        raise StructureError(f"{where}: invalid atomic numbers {sorted(set(z.tolist()))}")
    cell = np.asarray(frame["cell"], dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(frame["pbc"], dtype=bool).reshape(3)
    if not np.isfinite(cell).all():
        raise StructureError(f"{where}: cell contains NaN or infinite values")
    if pbc.any():
        periodic = cell[pbc]
        lengths = np.linalg.norm(periodic, axis=1)
        if (lengths < 1e-6).any():
            raise StructureError(
                f"{where}: periodic along {_axes(pbc)} but a periodic cell vector is zero"
            )
        sv = np.linalg.svd(periodic, compute_uv=False)
        if sv.min() < 1e-6 * sv.max():
            raise StructureError(f"{where}: periodic cell vectors are linearly dependent")
    if supported is not None:
        unknown = sorted(set(z.tolist()) - set(int(s) for s in supported))
        if unknown:
            raise StructureError(
                f"{where}: element(s) {[chemical_symbols[u] for u in unknown]} not supported by "
                f"this model; it knows {[chemical_symbols[s] for s in sorted(supported)]}"
            )
    check_charge_spin(frame, name)
    if min_distance > 0 and (len(pos) > 1 or pbc.any()):
        from .neighbors import neighbor_list

        # A search at a cutoff >= min_distance would do: vesin is slow for tiny cutoffs in
        # large boxes, so use a few Å (frame_to_graph reuses its own list instead).
        edge_index, shift = neighbor_list(pos, cell, pbc, max(min_distance, 2.0))
        check_distances(pos, cell, edge_index, shift, min_distance, where)


def _axes(pbc) -> str:
    return "".join(a for a, p in zip("xyz", pbc) if p)


def check_charge_spin(frame: dict, name: str | None = None) -> None:
    """Multiplicity >= 1 and integral, and its parity matches the electron count."""
    where = _where(name or frame.get("name"))
    charge, spin = frame.get("charge"), frame.get("spin")
    if charge is None and spin is None:
        return
    charge = 0.0 if charge is None else float(np.asarray(charge))
    if not np.isfinite(charge) or abs(charge - round(charge)) > 1e-6:
        raise StructureError(f"{where}: total charge must be an integer, got {charge}")
    n_electrons = int(np.asarray(frame["atomic_numbers"]).sum()) - round(charge)
    if n_electrons <= 0:
        # Bare nuclei are no chemistry an MLIP is trained on, and have no electrons to pair.
        raise StructureError(f"{where}: charge {charge:+g} leaves "
                             f"{'no' if n_electrons == 0 else n_electrons} electrons")
    if spin is None:
        return
    spin = float(np.asarray(spin))
    if not np.isfinite(spin) or spin < 1 or abs(spin - round(spin)) > 1e-6:
        raise StructureError(
            f"{where}: spin multiplicity must be an integer >= 1 (2S+1), got {spin}"
        )
    unpaired = round(spin) - 1
    if unpaired > n_electrons or (n_electrons - unpaired) % 2:
        raise StructureError(
            f"{where}: spin multiplicity {round(spin)} is impossible with {n_electrons} electrons "
            f"(charge {charge:+g}); {'odd' if n_electrons % 2 else 'even'} electron counts "
            f"need {'even' if n_electrons % 2 else 'odd'} multiplicities"
        )


def lowest_multiplicity(electrons):
    """The default multiplicity of DESIGN §3: 1 for an even electron count, 2 for an odd one
    (an int, or an integer tensor elementwise)."""
    return 1 + electrons % 2


def check_distances(pos, cell, edge_index, shift, min_distance=MIN_DISTANCE, where="structure"):
    """Refuse a pair closer than ``min_distance`` among the edges of a neighbour list."""
    if not edge_index.shape[1]:
        return
    vec = pos[edge_index[0]] - pos[edge_index[1]] + shift @ cell
    d2 = np.einsum("ij,ij->i", vec, vec)
    k = int(np.argmin(d2))
    if d2[k] < min_distance**2:
        j, i = edge_index[:, k]
        d = float(np.sqrt(d2[k]))
        image = "" if not shift[k].any() else f" (periodic image {shift[k].astype(int).tolist()})"
        raise StructureError(
            f"{where}: atoms {i} and {j}{image} are {d:.3g} Å apart, closer than {min_distance} Å"
        )
