"""Structures -> graphs (DESIGN §2).

A *frame* is one structure as numpy arrays, the fields of :data:`mlip.data.keys.FRAME` (the
required ones always, the rest when known) plus an optional ``name`` string; their shapes are in
:mod:`mlip.data.keys`. Readers yield frames; :func:`frame_to_graph` adds the neighbour list and
the batch dimension.
"""

from __future__ import annotations

import numpy as np
import torch

from . import keys as K
from .neighbors import neighbor_list
from .validate import StructureError, check_distances, check_frame, lowest_multiplicity


def voigt_to_matrix(stress) -> np.ndarray:
    """ASE Voigt order (xx, yy, zz, yz, xz, xy), 9 numbers or 3x3 -> symmetric 3x3."""
    s = np.asarray(stress, dtype=np.float64).reshape(-1)
    if s.size == 9:
        return s.reshape(3, 3)
    if s.size == 6:
        xx, yy, zz, yz, xz, xy = s
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise ValueError(f"stress must have 6 (Voigt) or 9 components, got {s.size}")


def matrix_to_voigt(stress) -> np.ndarray:
    s = np.asarray(stress).reshape(3, 3)
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def atoms_to_frame(atoms, name: str | None = None) -> dict:
    """An ASE ``Atoms`` as a frame, with targets from its calculator results when present."""
    frame = {
        K.POSITIONS: np.array(atoms.get_positions(), dtype=np.float64),
        K.ATOMIC_NUMBERS: np.array(atoms.numbers, dtype=np.int64),
        K.CELL: np.array(atoms.cell.array, dtype=np.float64),
        K.PBC: np.array(atoms.pbc, dtype=bool),
    }
    results = getattr(atoms.calc, "results", None) or {}
    if "energy" in results:
        frame[K.ENERGY] = np.float64(results["energy"])
    if "forces" in results:
        frame[K.FORCES] = np.array(results["forces"], dtype=np.float64)
    if "stress" in results:
        frame[K.STRESS] = voigt_to_matrix(results["stress"])
    info = atoms.info
    if "charge" in info:
        frame[K.CHARGE] = np.float64(info["charge"])
    for key in ("spin", "multiplicity", "spin_multiplicity"):
        if key in info:
            frame[K.SPIN] = np.float64(info[key])
            break
    if atoms.has("tags") and atoms.get_tags().any():
        frame[K.TAGS] = np.array(atoms.get_tags(), dtype=np.int64)
    fixed = _fixed_atoms(atoms)
    if fixed is not None:
        frame[K.FIXED] = fixed
    name = name or info.get("name")
    if name is not None:
        frame["name"] = str(name)
    return frame


def frame_to_atoms(frame: dict, results: dict | None = None):
    """A frame as an ASE ``Atoms``, the inverse of :func:`atoms_to_frame`: charge, spin and
    name in ``info``, tags, ``fixed`` as a ``FixAtoms`` constraint, and ``results`` (default:
    the frame's own targets, ASE's names and Voigt stress) on a single-point calculator."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.constraints import FixAtoms

    atoms = Atoms(numbers=frame[K.ATOMIC_NUMBERS], positions=frame[K.POSITIONS],
                  cell=frame[K.CELL], pbc=frame[K.PBC])
    if "name" in frame:
        atoms.info["name"] = str(frame["name"])
    for key in (K.CHARGE, K.SPIN):
        if key in frame:
            atoms.info[key] = float(frame[key])
    if K.TAGS in frame:
        atoms.set_tags(np.asarray(frame[K.TAGS]))
    if K.FIXED in frame and np.any(frame[K.FIXED]):
        atoms.set_constraint(FixAtoms(mask=np.asarray(frame[K.FIXED], dtype=bool)))
    if results is None:
        results = {}
        if K.ENERGY in frame:
            results["energy"] = float(frame[K.ENERGY])
        if K.FORCES in frame:
            results["forces"] = np.asarray(frame[K.FORCES])
        if K.STRESS in frame:
            results["stress"] = matrix_to_voigt(np.asarray(frame[K.STRESS]))
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def input_frame(frame: dict) -> dict:
    """The frame without its targets: what a model may see when it predicts."""
    return {k: v for k, v in frame.items() if k in K.INPUTS or k == "name"}


def _fixed_atoms(atoms):
    from ase.constraints import FixAtoms

    mask = np.zeros(len(atoms), dtype=bool)
    found = False
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            mask[c.get_indices()] = True
            found = True
    return mask if found else None


def pymatgen_to_frame(obj, name: str | None = None) -> dict:
    """A pymatgen ``Structure`` (periodic) or ``Molecule`` (open, with charge and spin)."""
    from pymatgen.core import Molecule, Structure

    if isinstance(obj, Structure):
        frame = {
            K.POSITIONS: np.array(obj.cart_coords, dtype=np.float64),
            K.ATOMIC_NUMBERS: np.array(obj.atomic_numbers, dtype=np.int64),
            K.CELL: np.array(obj.lattice.matrix, dtype=np.float64),
            K.PBC: np.array(obj.lattice.pbc, dtype=bool),
        }
        if obj.charge:
            frame[K.CHARGE] = np.float64(obj.charge)
    elif isinstance(obj, Molecule):
        frame = {
            K.POSITIONS: np.array(obj.cart_coords, dtype=np.float64),
            K.ATOMIC_NUMBERS: np.array(obj.atomic_numbers, dtype=np.int64),
            K.CELL: np.zeros((3, 3)),
            K.PBC: np.zeros(3, dtype=bool),
            K.CHARGE: np.float64(obj.charge),
            K.SPIN: np.float64(obj.spin_multiplicity),
        }
    else:
        raise TypeError(f"expected a pymatgen Structure or Molecule, got {type(obj).__name__}")
    if name is not None:
        frame["name"] = name
    return frame


def frame_to_graph(
    frame: dict,
    cutoff: float,
    neighbors: str = "vesin",
    validate: bool = True,
    supported: list[int] | None = None,
) -> dict[str, torch.Tensor]:
    """A frame as a single-structure graph in float64, with its neighbour list."""
    if validate:
        check_frame(frame, supported=supported, min_distance=0.0)
    pos = np.asarray(frame[K.POSITIONS], dtype=np.float64)
    cell = np.asarray(frame[K.CELL], dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(frame[K.PBC], dtype=bool).reshape(3)
    edge_index, edge_shift = neighbor_list(pos, cell, pbc, cutoff, backend=neighbors)
    if validate:
        # The graph's own edges reveal overlapping atoms: no second neighbour search.
        name = frame.get("name")
        check_distances(pos, cell, edge_index, edge_shift, where=f"structure {name}" if name
                        else "structure")
    n = len(pos)
    graph = {
        K.POSITIONS: torch.from_numpy(pos.copy()),
        K.ATOMIC_NUMBERS: torch.as_tensor(np.asarray(frame[K.ATOMIC_NUMBERS]), dtype=torch.long),
        K.CELL: torch.from_numpy(cell.copy())[None],
        K.PBC: torch.from_numpy(pbc.copy())[None],
        K.EDGE_INDEX: torch.from_numpy(edge_index),
        K.EDGE_SHIFT: torch.from_numpy(edge_shift),
        K.BATCH: torch.zeros(n, dtype=torch.long),
        K.NUM_ATOMS: torch.tensor([n]),
    }
    for key in K.OPTIONAL:
        if key not in frame or frame[key] is None:
            continue
        field = K.FIELDS[key]
        value = np.asarray(frame[key])
        t = torch.as_tensor(value.copy())
        if field.dtype == "float":
            t = t.to(torch.float64)
        if field.level == "structure":
            t = t.reshape((1, *field.shape))
        elif t.shape[0] != n:
            raise StructureError(
                f"structure {frame.get('name', '')}: {key} has {t.shape[0]} rows for {n} atoms"
            )
        graph[key] = t
    return graph


def from_ase(atoms, cutoff: float, **kwargs) -> dict[str, torch.Tensor]:
    """Graph of an ASE ``Atoms``; kwargs go to :func:`frame_to_graph`."""
    return frame_to_graph(atoms_to_frame(atoms), cutoff, **kwargs)


def from_pymatgen(obj, cutoff: float, **kwargs) -> dict[str, torch.Tensor]:
    """Graph of a pymatgen ``Structure`` or ``Molecule``."""
    return frame_to_graph(pymatgen_to_frame(obj), cutoff, **kwargs)


def batch_graphs(
    graphs: list[dict[str, torch.Tensor]], common_keys: bool = False
) -> dict[str, torch.Tensor]:
    """Concatenate graphs into one batch, offsetting edge and batch indices.

    Graphs must carry the same keys; with ``common_keys`` the keys some graphs lack (a target
    known for only part of the batch, say) are dropped instead.
    """
    if not graphs:
        raise ValueError("cannot batch an empty list of graphs")
    graphs = _with_charge_spin(graphs)
    keys = set.intersection(*(set(g) for g in graphs)) if common_keys else set(graphs[0])
    for i, g in enumerate(graphs[1:], 1):
        if not common_keys and set(g) != keys:
            missing = sorted(keys ^ set(g))
            raise ValueError(
                f"graph {i} differs from graph 0 in keys {missing}; batch like with like"
            )
    counts = [int(g[K.POSITIONS].shape[0]) for g in graphs]
    offsets = np.cumsum([0] + counts[:-1])
    out = {}
    for key in keys:
        if key == K.EDGE_INDEX:
            out[key] = torch.cat([g[key] + int(o) for g, o in zip(graphs, offsets)], dim=1)
        elif key == K.BATCH:
            out[key] = torch.cat(
                [torch.full((c,), b, dtype=torch.long) for b, c in enumerate(counts)]
            ).to(graphs[0][key].device)
        else:
            out[key] = torch.cat([g[key] for g in graphs], dim=0)
    return out


def _with_charge_spin(graphs: list[dict]) -> list[dict]:
    """Where some graphs give a charge or spin, every graph gets both, missing values by the
    policy of DESIGN §3 (charge 0, then the lowest multiplicity of the electron count): a batch
    that mixes charged and plain structures must not drop the charges."""
    if not any(K.CHARGE in g or K.SPIN in g for g in graphs):
        return graphs
    out = []
    for g in graphs:
        if K.CHARGE not in g or K.SPIN not in g:
            g = dict(g)
            device = g[K.POSITIONS].device
            charge = g.setdefault(K.CHARGE, torch.zeros(1, dtype=torch.float64, device=device))
            electrons = int(g[K.ATOMIC_NUMBERS].sum()) - round(float(charge[0]))
            g.setdefault(K.SPIN, torch.tensor([float(lowest_multiplicity(electrons))],
                                              dtype=torch.float64, device=device))
        out.append(g)
    return out


def unbatch(graph: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Split a batch back into single-structure graphs."""
    counts = graph[K.NUM_ATOMS].tolist()
    starts = np.cumsum([0] + counts)
    receiver_batch = graph[K.BATCH][graph[K.EDGE_INDEX][1]]
    out = []
    for b, n in enumerate(counts):
        edges = receiver_batch == b
        g = {}
        for key, value in graph.items():
            if key == K.EDGE_INDEX:
                g[key] = value[:, edges] - int(starts[b])
            elif key in K.PER_EDGE:
                g[key] = value[edges]
            elif key == K.BATCH:
                g[key] = torch.zeros(n, dtype=torch.long, device=value.device)
            elif key in K.PER_STRUCTURE:
                g[key] = value[b : b + 1]
            else:
                g[key] = value[starts[b] : starts[b + 1]]
        out.append(g)
    return out


def to(graph, device=None, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Move a graph; ``dtype`` applies to floating-point fields only."""
    out = {}
    for key, value in graph.items():
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        out[key] = value.to(device) if device is not None else value
    return out
