"""Measuring equivariance over rotation orbits (NERO-style): how much a model's predictions
change when the same structure is presented in different orientations.

For each structure, ``n_rotations`` random rotations R_k (seeded; the identity is always
included) give predictions E_k and F_k on x R_k^T. The forces are rotated back, F_k R_k, and
compared with the orbit mean. Reported per structure and in summary:

- ``energy_spread``: max_k E_k - min_k E_k (eV); ``energy_std`` (eV); both also per atom;
- ``force_rmse``: RMS over the orbit and atoms of |F_k R_k - mean_k F_k R_k| (eV/Å);
- ``force_relative``: force_rmse / RMS |mean_k F_k R_k|, the dimensionless number to compare
  models by;
- per rotation: its angle and its errors against the identity pose, for the optional plot.

An exactly equivariant model gives numbers at float rounding (~1e-15 relative in float64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms

from .contract import evaluate
from .structures import random_rotation


@dataclass
class StructureEquivariance:
    name: str
    n_atoms: int
    energy_spread: float
    energy_std: float
    energy_spread_per_atom: float
    force_rmse: float
    force_relative: float
    angles: list[float] = field(default_factory=list)  # rotation angle (rad) of each pose
    energy_errors: list[float] = field(default_factory=list)  # |E_k - E_identity|, eV
    force_errors: list[float] = field(default_factory=list)  # RMS |F_k R_k - F_identity|, eV/Å


@dataclass
class EquivarianceReport:
    n_rotations: int
    seed: int
    reflect: bool
    structures: list[StructureEquivariance]

    @property
    def summary(self) -> dict[str, float]:
        s = self.structures
        return {
            "energy_spread_max": max(x.energy_spread for x in s),
            "energy_spread_per_atom_mean": float(np.mean([x.energy_spread_per_atom for x in s])),
            "force_rmse_mean": float(np.mean([x.force_rmse for x in s])),
            "force_relative_mean": float(np.mean([x.force_relative for x in s])),
            "force_relative_max": max(x.force_relative for x in s),
        }

    def to_dict(self) -> dict:
        return {"n_rotations": self.n_rotations, "seed": self.seed, "reflect": self.reflect,
                "summary": self.summary, "structures": [asdict(x) for x in self.structures]}


def _rotation_angle(q: np.ndarray) -> float:
    proper = q * np.sign(np.linalg.det(q))
    return float(np.arccos(np.clip((np.trace(proper) - 1) / 2, -1.0, 1.0)))


def _orbit(model, atoms: Atoms, rotations: list[np.ndarray], name: str) -> StructureEquivariance:
    posed = []
    for q in rotations:
        a = atoms.copy()
        a.positions = atoms.positions @ q.T
        a.cell = atoms.cell.array @ q.T
        posed.append(a)
    results = evaluate(model, posed, stress=False)
    energies = np.array([float(r["energy"]) for r in results])
    back = np.stack([r["forces"] @ q for r, q in zip(results, rotations)])  # (K, N, 3)
    mean = back.mean(0)
    rmse = float(np.sqrt(np.mean(np.sum((back - mean) ** 2, -1))))
    scale = float(np.sqrt(np.mean(np.sum(mean**2, -1))))
    n = len(atoms)
    spread = float(energies.max() - energies.min())
    return StructureEquivariance(
        name=name, n_atoms=n, energy_spread=spread, energy_std=float(energies.std()),
        energy_spread_per_atom=spread / n, force_rmse=rmse,
        force_relative=rmse / max(scale, 1e-12),
        angles=[_rotation_angle(q) for q in rotations],
        energy_errors=[float(abs(e - energies[0])) for e in energies],
        force_errors=[float(np.sqrt(np.mean(np.sum((f - back[0]) ** 2, -1)))) for f in back],
    )


def equivariance_error(model, structures, n_rotations: int = 16, seed: int = 0,
                       reflect: bool = False, plot=None, names=None) -> EquivarianceReport:
    """Energy spread and force error of ``model`` over rotation orbits of ``structures`` (ASE
    Atoms). The same seeded rotations are used for every structure; with ``reflect`` half of
    them include the inversion. ``plot``: a path to save the error against rotation angle."""
    if isinstance(structures, Atoms):
        structures = [structures]
    if n_rotations < 1:
        raise ValueError("n_rotations must be at least 1")
    rng = np.random.default_rng(seed)
    rotations = [np.eye(3)] + [
        random_rotation(rng, reflect=bool(reflect and k % 2)) for k in range(n_rotations)
    ]
    names = names or [a.get_chemical_formula() + f"#{i}" for i, a in enumerate(structures)]
    report = EquivarianceReport(n_rotations, seed, reflect, [
        _orbit(model, atoms, rotations, name) for atoms, name in zip(structures, names)
    ])
    if plot is not None:
        plot_errors(report, plot)
    return report


def plot_errors(report: EquivarianceReport, path) -> None:
    """Force and energy error against rotation angle, one series per structure (Agg backend)."""
    # An explicit Agg canvas: no pyplot, no change to the process's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax_f, ax_e = fig.subplots(1, 2)
    for s in report.structures:
        angles = np.degrees(s.angles[1:])  # the identity pose has no error by definition
        ax_f.scatter(angles, np.maximum(s.force_errors[1:], 1e-18), s=12, label=s.name)
        ax_e.scatter(angles, np.maximum(s.energy_errors[1:], 1e-18), s=12, label=s.name)
    for ax, label in ((ax_f, "force RMS error vs identity (eV/Å)"),
                      (ax_e, "|energy error| vs identity (eV)")):
        ax.set_xlabel("rotation angle (degrees)")
        ax.set_ylabel(label)
        ax.set_yscale("log")
    ax_f.legend(fontsize=7)
    fig.savefig(path, dpi=120)
