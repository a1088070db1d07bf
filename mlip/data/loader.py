"""Datasets of graphs built on the fly, size-aware batching, seeded splits, statistics.

Graphs are built in ``__getitem__``, so with ``num_workers > 0`` the neighbour lists are computed
in the DataLoader's worker processes. Batches are limited by atoms and edges, not by a count of
structures: one 200-atom crystal and twenty 10-atom molecules cost about the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase.data import covalent_radii

from . import keys as K
from .graph import batch_graphs, frame_to_graph
from .hdf5 import HDF5Dataset
from .neighbors import neighbor_list
from .validate import lowest_multiplicity

log = logging.getLogger("mlip.data")


class GraphDataset(torch.utils.data.Dataset):
    """Graphs of frames from an HDF5 cache (path or :class:`HDF5Dataset`), a list of frames or
    any iterable of frames (a reader's stream, read once into memory)."""

    def __init__(
        self,
        source,
        cutoff: float,
        neighbors: str = "vesin",
        supported: list[int] | None = None,
        validate: bool = True,
    ):
        if isinstance(source, str | Path):
            source = HDF5Dataset(source)
        elif not isinstance(source, HDF5Dataset | Sequence):
            source = list(source)
        self.frames, self.cutoff = source, float(cutoff)
        self.neighbors, self.supported, self.validate = neighbors, supported, validate
        self._edges: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        frame = self.frames[i]
        return frame_to_graph(
            frame, self.cutoff, self.neighbors, validate=self.validate, supported=self.supported
        )

    @property
    def num_atoms(self) -> np.ndarray:
        if isinstance(self.frames, HDF5Dataset):
            return self.frames.num_atoms
        return np.array([len(f[K.POSITIONS]) for f in self.frames], dtype=np.int64)

    def num_edges(self) -> np.ndarray:
        """Edges per structure at this cutoff; one neighbour-list pass, cached."""
        if self._edges is None:
            counts = []
            for i in range(len(self)):
                f = self.frames[i]
                cell = np.asarray(f[K.CELL]).reshape(3, 3)
                ei, _ = neighbor_list(f[K.POSITIONS], cell, np.asarray(f[K.PBC]), self.cutoff)
                counts.append(ei.shape[1])
            self._edges = np.array(counts, dtype=np.int64)
        return self._edges


# The per-atom inputs a frame may leave out (tags, fixed), whose fill is what absence means.
# Charge and spin are not filled here: batch_graphs applies their policy.
_DEFAULTS = [
    K.FIELDS[key] for key in K.OPTIONAL if K.FIELDS[key].level == "atom" and key in K.INPUTS
]
_TARGETS = [K.FIELDS[key] for key in K.TARGETS]  # filled with NaN: an unknown target


def _fill_missing(graphs: list[dict[str, torch.Tensor]], fields) -> None:
    """Give each field's fill to the graphs of a batch that lack it while others have it."""
    for f in fields:
        if any(f.name in g for g in graphs) and not all(f.name in g for g in graphs):
            for g in graphs:
                if f.name not in g:
                    rows = 1 if f.level == "structure" else len(g[K.POSITIONS])
                    g[f.name] = torch.from_numpy(np.full((rows, *f.shape), f.fill, f.numpy_dtype))


def collate(graphs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """:func:`batch_graphs`, after giving ``tags`` (0) and ``fixed`` (False) to graphs without
    them: frames leave all-zero tags out, so one file can mix both."""
    _fill_missing(graphs, _DEFAULTS)
    return batch_graphs(graphs)


def collate_targets(graphs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """:func:`collate`, after giving NaN targets to structures without them, so one batch may
    mix frames with and without forces or stress."""
    _fill_missing(graphs, _TARGETS)
    return collate(graphs)


class SizeBatchSampler(torch.utils.data.Sampler):
    """Batches of indices with at most ``max_atoms`` atoms and ``max_edges`` edges (and at most
    ``max_graphs`` structures), packed greedily in a seeded order that changes with
    :meth:`set_epoch`. A structure above a limit on its own forms a batch alone, with a warning.
    """

    def __init__(
        self,
        num_atoms,
        max_atoms: int,
        num_edges=None,
        max_edges: int | None = None,
        max_graphs: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        self.num_atoms = np.asarray(num_atoms, dtype=np.int64)
        self.num_edges = None if num_edges is None else np.asarray(num_edges, dtype=np.int64)
        if max_edges is not None and self.num_edges is None:
            raise ValueError("max_edges needs num_edges (GraphDataset.num_edges())")
        self.max_atoms, self.max_edges, self.max_graphs = max_atoms, max_edges, max_graphs
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        self._warned = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        n = len(self.num_atoms)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        batches, current, atoms, edges = [], [], 0, 0
        for i in order.tolist():
            a = int(self.num_atoms[i])
            e = 0 if self.num_edges is None else int(self.num_edges[i])
            too_many = (
                atoms + a > self.max_atoms
                or (self.max_edges is not None and edges + e > self.max_edges)
                or (self.max_graphs is not None and len(current) >= self.max_graphs)
            )
            if current and too_many:
                batches.append(current)
                current, atoms, edges = [], 0, 0
            if not self._warned and (
                a > self.max_atoms or (self.max_edges is not None and e > self.max_edges)
            ):
                log.warning("structure %d (%d atoms, %d edges) exceeds the batch limits", i, a, e)
                self._warned = True
            current.append(i)
            atoms, edges = atoms + a, edges + e
        if current and not self.drop_last:
            batches.append(current)
        return batches

    def __iter__(self):
        yield from self._batches()

    def __len__(self) -> int:
        return len(self._batches())


def make_loader(
    dataset: GraphDataset,
    max_atoms: int,
    max_edges: int | None = None,
    max_graphs: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    **loader_kwargs,
) -> torch.utils.data.DataLoader:
    """A DataLoader of batched graphs (:func:`collate`) under the atom and edge limits."""
    sampler = SizeBatchSampler(
        dataset.num_atoms,
        max_atoms,
        num_edges=dataset.num_edges() if max_edges is not None else None,
        max_edges=max_edges,
        max_graphs=max_graphs,
        shuffle=shuffle,
        seed=seed,
    )
    if num_workers > 0:
        loader_kwargs.setdefault("persistent_workers", True)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        **loader_kwargs,
    )


def split_indices(
    n: int, fractions: Sequence[float], seed: int = 0, groups: Sequence | None = None
) -> list[np.ndarray]:
    """Seeded split of ``range(n)`` by ``fractions`` (summing to 1). With ``groups`` (one label
    per item, e.g. :func:`file_groups`), whole groups go to one split so that frames of one
    trajectory or file never straddle train and test; fractions then count groups' items."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if (fractions < 0).any() or abs(fractions.sum() - 1) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {fractions.tolist()}")
    rng = np.random.default_rng(seed)
    bounds = np.cumsum(fractions)[:-1]
    if groups is None:
        perm = rng.permutation(n)
        cuts = np.round(bounds * n).astype(int)
        return [np.sort(part) for part in np.split(perm, cuts)]
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} items")
    labels, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(labels))
    order = rng.permutation(len(labels))
    filled = np.cumsum(sizes[order]) / n
    which = np.searchsorted(bounds, filled - 0.5 * sizes[order] / n, side="right")
    split_of_label = np.empty(len(labels), dtype=int)
    split_of_label[order] = which
    return [np.nonzero(split_of_label[inverse] == s)[0] for s in range(len(fractions))]


def file_groups(names: Iterable[str]) -> list[str]:
    """The source file of each frame name ``file:frame`` (the text before the last ':')."""
    return [name.rsplit(":", 1)[0] for name in names]


@dataclass
class DatasetStatistics:
    e0: dict[int, float]  # eV per element
    mean_num_neighbors: float
    force_rms: float  # eV/Å over all force components
    n_frames: int
    n_atoms: int
    elements: list[int] = field(default_factory=list)
    e0_method: str = "fit"
    # The pair closest relative to its covalent radii sum: (ratio, frame, Z_a, Z_b, distance Å)
    closest_pair: tuple[float, int, int, int, float] | None = None


def fit_e0(frames: Iterable[dict]) -> dict[int, float]:
    """Least-squares E0 per element: energy ≈ Σ_Z count_Z · E0_Z over frames with an energy.

    With a single composition (one molecule's MD) the system is underdetermined and lstsq gives
    the minimum-norm solution; use isolated-atom energies there. Where frames give charges or
    spins, only those in their default state (neutral, lowest multiplicity) enter: E0 is the
    neutral reference, and a conditioned model learns the charge states on top of it."""
    frames = list(frames)
    default = [f for f in frames if _default_state(f)]
    if len(default) < len(frames) and default:
        frames = default
    rows, energies = [], []
    for f in frames:
        if K.ENERGY in f:
            rows.append(np.bincount(np.asarray(f[K.ATOMIC_NUMBERS]), minlength=119))
            energies.append(float(f[K.ENERGY]))
    if not rows:
        raise ValueError("no frame has an energy; cannot fit E0")
    a = np.array(rows, dtype=np.float64)
    present = np.nonzero(a.sum(0))[0]
    solution, *_ = np.linalg.lstsq(a[:, present], np.array(energies), rcond=None)
    return {int(z): float(e) for z, e in zip(present, solution)}


def _default_state(frame: dict) -> bool:
    charge = float(frame.get(K.CHARGE, 0.0))
    electrons = int(np.asarray(frame[K.ATOMIC_NUMBERS]).sum()) - round(charge)
    lowest = lowest_multiplicity(electrons)
    return charge == 0 and float(frame.get(K.SPIN, lowest)) == lowest


def e0_from_isolated(frames: Iterable[dict]) -> dict[int, float]:
    """E0 from single-atom frames with an energy (``isolated_atoms.xyz``)."""
    e0 = {}
    for f in frames:
        if len(f[K.ATOMIC_NUMBERS]) == 1 and K.ENERGY in f:
            e0[int(f[K.ATOMIC_NUMBERS][0])] = float(f[K.ENERGY])
    if not e0:
        raise ValueError("no isolated-atom frame with an energy found")
    return e0


def compute_statistics(
    frames_or_dataset, cutoff: float, e0="fit", isolated=None, neighbors: str = "vesin"
) -> DatasetStatistics:
    """E0 (``"fit"``, ``"isolated"`` with ``isolated`` frames, or a ``{Z: eV}`` dict), mean
    number of neighbours at ``cutoff``, force RMS and the closest pair relative to covalent
    radii (where a pair repulsion would act), in one pass over the frames."""
    source = frames_or_dataset
    if isinstance(source, GraphDataset):
        source = source.frames
    elif isinstance(source, str | Path):
        source = HDF5Dataset(source)
    frames = source if isinstance(source, Sequence | HDF5Dataset) else list(source)
    n_edges = n_atoms = n_force = 0
    force_sq = 0.0
    elements: set[int] = set()
    closest = None
    for i in range(len(frames)):
        f = frames[i]
        cell = np.asarray(f[K.CELL]).reshape(3, 3)
        ei, shift = neighbor_list(f[K.POSITIONS], cell, np.asarray(f[K.PBC]), cutoff,
                                  backend=neighbors)
        n_edges += ei.shape[1]
        if ei.shape[1]:
            z = np.asarray(f[K.ATOMIC_NUMBERS])
            pos = np.asarray(f[K.POSITIONS])
            d = np.linalg.norm(pos[ei[0]] - pos[ei[1]] + shift @ cell, axis=1)
            ratio = d / (covalent_radii[z[ei[0]]] + covalent_radii[z[ei[1]]])
            k = int(np.argmin(ratio))
            if closest is None or ratio[k] < closest[0]:
                closest = (float(ratio[k]), i, int(z[ei[0, k]]), int(z[ei[1, k]]), float(d[k]))
        n_atoms += len(f[K.POSITIONS])
        elements.update(np.asarray(f[K.ATOMIC_NUMBERS]).tolist())
        if K.FORCES in f:
            force_sq += float(np.sum(np.square(f[K.FORCES])))
            n_force += np.size(f[K.FORCES])
    if isinstance(e0, dict):
        e0_values, method = {int(z): float(v) for z, v in e0.items()}, "given"
    elif e0 == "isolated":
        e0_values, method = e0_from_isolated(isolated if isolated is not None else frames), e0
    elif e0 == "fit":
        e0_values, method = fit_e0(frames[i] for i in range(len(frames))), e0
    else:
        raise ValueError(f"e0 must be 'fit', 'isolated' or a dict, got {e0!r}")
    return DatasetStatistics(
        e0=e0_values,
        mean_num_neighbors=n_edges / max(n_atoms, 1),
        force_rms=float(np.sqrt(force_sq / n_force)) if n_force else float("nan"),
        n_frames=len(frames),
        n_atoms=n_atoms,
        elements=sorted(elements),
        e0_method=method,
        closest_pair=closest,
    )
