"""Every field of a frame, graph and batch, named once, with its level, shape, dtype and unit.

A *frame* is one structure as numpy arrays (what readers yield and the HDF5 cache stores):
a per-atom field is ``(N, *shape)``, a per-structure one ``shape``; floats are float64. A
*graph* is the same data as torch tensors plus the neighbour list, per-structure fields with a
leading axis of one, ``(1, *shape)``; a *batch* is one graph holding several structures, told
apart by ``batch``: per-atom fields ``(N, *shape)``, per-edge ``(E, *shape)``, per-structure
``(B, *shape)``. ``B`` counts structures, ``N`` atoms, ``E`` edges. ``edge_index`` alone is
``(2, E)``: its edges are columns.

:data:`FIELDS` is the one table. The key constants (``POSITIONS = "positions"``, ...) are the
names registered in it, and the tuples at the end are read from it; so are the HDF5 cache's
layout, the readers' shape and finite checks, the graph's optional fields, the fills of a mixed
batch and the loss targets. A new field is one :func:`_field` line here; a new frame field
also changes the HDF5 cache format (hdf5.FORMAT_VERSION).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = ("atom", "edge", "structure")
DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}
# input: a frame's data a model sees; target: a frame's label a model predicts; graph: built
# by frame_to_graph and batching; output: predicted only; reader: found in files only, turned
# into another field before a frame is made.
ROLES = ("input", "target", "graph", "output", "reader")


@dataclass(frozen=True)
class Field:
    name: str
    level: str  # one of LEVELS: what one row counts
    shape: tuple[int, ...]  # of one row (atom, edge or structure)
    dtype: str  # a key of DTYPES
    role: str  # one of ROLES
    unit: str = ""  # "" for dimensionless numbers, counts and flags
    # What an array holding many frames stores for a frame without the field (the HDF5 cache,
    # a mixed batch): NaN marks an unknown number, 0 tags and unfixed atoms are what absence
    # means. None: every frame has it.
    fill: float | int | bool | None = None
    doc: str = ""

    @property
    def numpy_dtype(self) -> type:
        return DTYPES[self.dtype]

    @property
    def in_frame(self) -> bool:
        return self.role in ("input", "target")

    @property
    def is_target(self) -> bool:
        return self.role == "target"


FIELDS: dict[str, Field] = {}


def _field(name, level, shape, dtype, role, unit="", fill=None, doc="") -> str:
    if name in FIELDS:
        raise ValueError(f"field {name!r} registered twice")
    if level not in LEVELS or dtype not in DTYPES or role not in ROLES:
        raise ValueError(f"field {name!r}: bad level, dtype or role {(level, dtype, role)}")
    if fill is not None and role not in ("input", "target"):
        raise ValueError(f"field {name!r}: only frame fields have a fill")
    FIELDS[name] = Field(name, level, tuple(shape), dtype, role, unit, fill, doc)
    return name


# --- frames ---------------------------------------------------------------------------
# The order of these is the order of the readers' checks (the first bad key is the one named)
# and of the HDF5 cache's datasets: append, never insert or reorder.
# fmt: off
POSITIONS = _field("positions", "atom", (3,), "float", "input", "Å", doc="Cartesian positions")
ATOMIC_NUMBERS = _field("atomic_numbers", "atom", (), "int", "input")
CELL = _field("cell", "structure", (3, 3), "float", "input", "Å",
              doc="rows are lattice vectors (zeros when fully open)")
PBC = _field("pbc", "structure", (3,), "bool", "input", doc="periodic along each cell vector")
ENERGY = _field("energy", "structure", (), "float", "target", "eV", fill=np.nan)
FORCES = _field("forces", "atom", (3,), "float", "target", "eV/Å", fill=np.nan)
STRESS = _field("stress", "structure", (3, 3), "float", "target", "eV/Å^3", fill=np.nan,
                doc="ASE sign (positive = tensile)")
CHARGE = _field("charge", "structure", (), "float", "input", "e", fill=np.nan, doc="total charge")
SPIN = _field("spin", "structure", (), "float", "input", fill=np.nan,
              doc="spin multiplicity 2S+1 (>= 1)")
TAGS = _field("tags", "atom", (), "int", "input", fill=0,
              doc="OC20 tags: 0 subsurface, 1 surface, 2 adsorbate")
FIXED = _field("fixed", "atom", (), "bool", "input", fill=False, doc="held fixed by a constraint")

# --- neighbour list and batching -------------------------------------------------------
EDGE_INDEX = _field("edge_index", "edge", (2,), "int", "graph",
                    doc="stored (2, E): row 0 = sender j, row 1 = receiver i")
EDGE_SHIFT = _field("edge_shift", "edge", (3,), "float", "graph",
                    doc="integer cell shifts; r_ij = r_j - r_i + shift @ cell")
BATCH = _field("batch", "atom", (), "int", "graph", doc="structure index of each atom")
NUM_ATOMS = _field("num_atoms", "structure", (), "int", "graph")

# --- predictions and file-only fields --------------------------------------------------
NODE_ENERGY = _field("node_energy", "atom", (), "float", "output", "eV", doc="energy per atom")
VIRIAL = _field("virial", "structure", (3, 3), "float", "reader", "eV",
                doc="= -stress * volume; readers convert it to stress")
# fmt: on


def _names(fields) -> tuple[str, ...]:
    return tuple(f.name for f in fields)


# What a graph or batch may carry, by level and dtype.
_GRAPH = [f for f in FIELDS.values() if f.role != "reader"]
PER_ATOM = _names(f for f in _GRAPH if f.level == "atom")
PER_STRUCTURE = _names(f for f in _GRAPH if f.level == "structure")
# Fields whose rows are edges; edge_index has them as columns (and batching offsets it), so
# every caller treats it on its own.
PER_EDGE = _names(f for f in _GRAPH if f.level == "edge" and f.name != EDGE_INDEX)
FLOAT_KEYS = _names(f for f in _GRAPH if f.dtype == "float")
INT_KEYS = _names(f for f in _GRAPH if f.dtype == "int")
BOOL_KEYS = _names(f for f in _GRAPH if f.dtype == "bool")
ALL_KEYS = PER_ATOM + PER_STRUCTURE + PER_EDGE + (EDGE_INDEX,)
TARGETS = _names(f for f in FIELDS.values() if f.is_target)

# What a frame may hold, in table order.
FRAME = _names(f for f in FIELDS.values() if f.in_frame)
REQUIRED = _names(FIELDS[k] for k in FRAME if FIELDS[k].fill is None)
OPTIONAL = _names(FIELDS[k] for k in FRAME if FIELDS[k].fill is not None)
INPUTS = _names(FIELDS[k] for k in FRAME if not FIELDS[k].is_target)


def frame_shape(key: str, n_atoms):
    """The shape of ``key`` in a frame of ``n_atoms`` atoms (any placeholder works, e.g. "N")."""
    field = FIELDS[key]
    return ((n_atoms,) if field.level == "atom" else ()) + field.shape
