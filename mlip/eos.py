"""Equations of state: E(V) of a crystal with a model, and a Birch-Murnaghan (or other ASE)
fit giving the equilibrium volume, energy and bulk modulus.

A point of the curve is the structure scaled isotropically to a volume and then relaxed at that
volume (atoms and, by default, the cell's shape: ``FrechetCellFilter(constant_volume=True)``),
as DFT equation-of-state curves are computed; a fit whose minimum falls outside the sampled
volumes is refused rather than extrapolated.
"""

from __future__ import annotations

import numpy as np
from ase import units

from .simulate import SimulationError, relax

EOS_FORMS = ("birchmurnaghan", "murnaghan", "vinet", "sj")


def fit_eos(volumes, energies, form: str = "birchmurnaghan", name: str = "") -> dict:
    """``{"v0", "e0", "b0_gpa"}`` (Å³, eV, GPa) of E(V) points; errors name ``name``."""
    from ase.eos import EquationOfState

    v, e = np.asarray(volumes, dtype=float), np.asarray(energies, dtype=float)
    where = f"{name}: " if name else ""
    if form not in EOS_FORMS:
        raise SimulationError(f"equation of state must be one of {EOS_FORMS}, got {form!r}")
    if len(v) < 5 or not np.all(np.isfinite(e)):
        raise SimulationError(
            f"{where}an equation of state needs at least 5 finite E(V) points,"
            f" got {int(np.isfinite(e).sum())}"
        )
    order = np.argsort(v)
    if np.argmin(e[order]) in (0, len(v) - 1):  # not bracketed: a fit would extrapolate
        raise SimulationError(
            f"{where}the lowest energy is at the end of the sampled volumes "
            f"[{v.min():.3f}, {v.max():.3f}] Å³, so the minimum lies outside them: widen "
            "--strain or relax the cell first"
        )
    try:
        v0, e0, b0 = EquationOfState(v, e, eos=form).fit(warn=False)
    except Exception as err:  # ASE raises bare RuntimeErrors and ValueErrors from its fits
        raise SimulationError(f"{where}the {form} fit failed: {err}") from None
    if not v.min() <= v0 <= v.max():
        raise SimulationError(
            f"{where}the fitted minimum ({v0:.3f} Å³) lies outside the sampled "
            f"volumes [{v.min():.3f}, {v.max():.3f}] Å³: widen --strain"
        )
    return {"v0": float(v0), "e0": float(e0), "b0_gpa": float(b0 / units.GPa)}


def equation_of_state(
    atoms,
    calculator,
    strain: float = 0.06,
    points: int = 9,
    relax_first: bool = True,
    relax_shape: bool = True,
    fmax: float = 0.01,
    steps: int = 500,
    form: str = "birchmurnaghan",
    basin_tolerance: float = 0.005,
) -> dict:
    """E(V) of ``atoms`` over volumes (1 ± ``strain``) V_eq and its fit; V_eq is the volume
    after a full cell relaxation (``relax_first``) or the structure's own.

    After a full relaxation no point of the curve may end more than ``basin_tolerance``
    eV/atom below the relaxed energy: such a point left the structure's basin (a phase change,
    or a hole in a learned potential), and a fit through it would be silently wrong."""
    if not atoms.pbc.all():
        raise SimulationError(
            "an equation of state needs a structure periodic in all three directions"
        )
    if not 0 < strain < 0.5 or points < 5:
        raise SimulationError(
            f"need 0 < strain < 0.5 and at least 5 points, got strain {strain} and {points} points"
        )
    base = atoms.copy()  # copies info (charge, spin) too
    summary = {"relaxed": None}
    if relax_first:
        summary["relaxed"] = relax(base, calculator, fmax=fmax, steps=steps, cell=True)
    volumes, energies, converged = [], [], []
    for factor in np.linspace(1 - strain, 1 + strain, points):
        scaled = base.copy()
        scaled.set_cell(base.cell[:] * factor ** (1 / 3), scale_atoms=True)
        result = relax(
            scaled, calculator, fmax=fmax, steps=steps, cell=relax_shape, constant_volume=True
        )
        volumes.append(scaled.get_volume())
        energies.append(result["energy"])
        converged.append(result["converged"])
        _check_basin(summary["relaxed"], result["energy"], len(base), volumes[-1], basin_tolerance)
    fit = fit_eos(volumes, energies, form)
    n = len(base)
    return {
        **summary,
        **fit,
        "form": form,
        "natoms": n,
        "v0_per_atom": fit["v0"] / n,
        "e0_per_atom": fit["e0"] / n,
        "volumes": [float(v) for v in volumes],
        "energies": [float(e) for e in energies],
        "all_converged": bool(all(converged)),
    }


def _check_basin(relaxed, energy, n, volume, tolerance):
    if relaxed is None:  # no full relaxation: no equilibrium to compare with
        return
    below = (relaxed["energy"] - energy) / n
    if below > tolerance:
        raise SimulationError(
            f"relaxed at {volume:.3f} Å³, the structure ends {1e3 * below:.1f} meV/atom below "
            f"the relaxed equilibrium ({relaxed['volume']:.3f} Å³): it left its basin (a phase "
            "change, or a hole in the model), so the curve is not one phase's E(V)"
        )
