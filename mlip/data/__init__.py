"""Structures -> graphs, datasets and readers."""

from . import keys
from .graph import (
    atoms_to_frame,
    batch_graphs,
    frame_to_atoms,
    frame_to_graph,
    from_ase,
    from_pymatgen,
    matrix_to_voigt,
    pymatgen_to_frame,
    to,
    unbatch,
    voigt_to_matrix,
)
from .hdf5 import HDF5Dataset, convert
from .loader import GraphDataset, compute_statistics, make_loader, split_indices
from .neighbors import brute_force_neighbor_list, neighbor_list
from .readers import DataError, read_frames
from .validate import StructureError, check_frame

__all__ = [
    "keys",
    "atoms_to_frame",
    "batch_graphs",
    "frame_to_atoms",
    "frame_to_graph",
    "from_ase",
    "from_pymatgen",
    "matrix_to_voigt",
    "pymatgen_to_frame",
    "to",
    "unbatch",
    "voigt_to_matrix",
    "brute_force_neighbor_list",
    "neighbor_list",
    "StructureError",
    "check_frame",
    "HDF5Dataset",
    "convert",
    "GraphDataset",
    "compute_statistics",
    "make_loader",
    "split_indices",
    "DataError",
    "read_frames",
]
