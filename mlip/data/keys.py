"""Every field of a graph, named once, with its shape and unit.

A *frame* is one structure as numpy float64 arrays (what readers yield). A *graph* is the
same data as torch tensors plus the neighbour list; a *batch* is one graph holding several
structures, told apart by ``batch``. ``B`` counts structures, ``N`` atoms, ``E`` edges.
"""

# --- structure ------------------------------------------------------------------------
POSITIONS = "positions"  # (N, 3) float, Å
ATOMIC_NUMBERS = "atomic_numbers"  # (N,) int64
CELL = "cell"  # (B, 3, 3) float, Å, rows are lattice vectors (zeros when fully open)
PBC = "pbc"  # (B, 3) bool
CHARGE = "charge"  # (B,) float, total charge in e
SPIN = "spin"  # (B,) float, spin multiplicity 2S+1 (>= 1)
TAGS = "tags"  # (N,) int64, OC20 tags: 0 subsurface, 1 surface, 2 adsorbate
FIXED = "fixed"  # (N,) bool, atoms held fixed by a constraint

# --- neighbour list -------------------------------------------------------------------
EDGE_INDEX = "edge_index"  # (2, E) int64; row 0 = sender j, row 1 = receiver i
EDGE_SHIFT = "edge_shift"  # (E, 3) float, integer cell shifts; r_ij = r_j - r_i + shift @ cell
BATCH = "batch"  # (N,) int64, structure index of each atom
NUM_ATOMS = "num_atoms"  # (B,) int64

# --- targets and predictions ----------------------------------------------------------
ENERGY = "energy"  # (B,) float, eV
NODE_ENERGY = "node_energy"  # (N,) float, eV
FORCES = "forces"  # (N, 3) float, eV/Å
STRESS = "stress"  # (B, 3, 3) float, eV/Å^3, ASE sign (positive = tensile)
VIRIAL = "virial"  # (B, 3, 3) float, eV (= -stress * volume); readers convert it to stress

PER_ATOM = (POSITIONS, ATOMIC_NUMBERS, TAGS, FIXED, FORCES, NODE_ENERGY, BATCH)
PER_STRUCTURE = (CELL, PBC, CHARGE, SPIN, ENERGY, STRESS, NUM_ATOMS)
PER_EDGE = (EDGE_SHIFT,)
TARGETS = (ENERGY, FORCES, STRESS)
FLOAT_KEYS = (POSITIONS, CELL, CHARGE, SPIN, EDGE_SHIFT, ENERGY, NODE_ENERGY, FORCES, STRESS)
INT_KEYS = (ATOMIC_NUMBERS, TAGS, EDGE_INDEX, BATCH, NUM_ATOMS)
BOOL_KEYS = (PBC, FIXED)
ALL_KEYS = PER_ATOM + PER_STRUCTURE + PER_EDGE + (EDGE_INDEX,)
