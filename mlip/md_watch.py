"""Is an MD run still physical? The watchdog of ``mlip md`` and the checks of
``scripts/md_stability.py``.

A learned potential that leaves its training distribution can heat a structure to thousands of
kelvin, pull atoms on top of each other or tear a molecule apart while the integrator reports
nothing. :class:`Watchdog` checks the state every few steps and raises :class:`MDStopped` with
the reason; :func:`analyse` runs the same checks over a finished (or killed) run's log and
trajectory. The limits (:class:`Limits`) and why the defaults are what they are:

- temperature above ``max(5 x target, 2000 K)``: an NVE run started at T settles near T/2 and a
  thermostat holds T; kinetic-energy fluctuations of even a 15-atom molecule are ~20% of T,
  so 5x is far outside any equilibrium excursion, and 2000 K keeps cold runs from tripping;
- two atoms closer than 0.5 Å: shorter than any bond (H2 is 0.74 Å); the model has lost its
  repulsion;
- NVE only: the total energy more than 0.01 eV/atom from its start. A trustworthy potential
  and time step drift by well under 1 meV/atom over a nanosecond (docs/benchmarks/);
- molecules (no periodic direction): a change of the number of fragments of the bond graph
  (covalent radii x 1.5) from the start: a molecule that falls apart.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

FRAGMENT_MULT = 1.5  # covalent radii factor of the bond graph that counts fragments
BOND_MULT = 1.2  # covalent radii factor of the bond graph whose changes are reported


def default_max_temperature(target: float) -> float:
    return max(5.0 * float(target), 2000.0)


@dataclass
class Limits:
    """None (or False for ``fragments``) turns a check off."""

    max_temperature: float | None = 2000.0  # K
    min_distance: float | None = 0.5  # Å
    max_drift: float | None = 0.01  # eV/atom, |E_tot - E_tot(start)|; NVE only
    fragments: bool = True  # molecules only

    def to_dict(self) -> dict:
        return asdict(self)


class MDStopped(RuntimeError):
    """The watchdog stopped a run: ``reason`` is one of temperature, distance, drift,
    fragments; ``step`` the MD step; the message says what and which limit (option)."""

    def __init__(self, reason: str, step: int, message: str, value: float | None = None):
        super().__init__(message)
        self.reason, self.step, self.value = reason, int(step), value


def _pairs(atoms, cutoff: float, quantities: str) -> list[np.ndarray]:
    """vesin half list (minimum image), one entry per pair closer than ``cutoff``."""
    from vesin import NeighborList

    pbc = np.asarray(atoms.pbc, dtype=bool)
    box = np.where(pbc[:, None], atoms.cell.array, 0.0) if pbc.any() else np.zeros((3, 3))
    nl = NeighborList(cutoff=float(cutoff), full_list=False)
    return nl.compute(atoms.positions, box, pbc.tolist(), quantities=quantities)


def closest_pair(atoms, within: float) -> tuple[float, int, int]:
    """(distance, i, j) of the closest two atoms (minimum image) if closer than ``within``,
    else (inf, -1, -1)."""
    if len(atoms) < 2:
        return math.inf, -1, -1
    i, j, d = _pairs(atoms, within, "ijd")
    if not len(d):
        return math.inf, -1, -1
    k = int(np.argmin(d))
    return float(d[k]), int(i[k]), int(j[k])


def closest_distance(atoms, within: float) -> float:
    """The shortest interatomic distance (minimum image) if it is below ``within``, else inf."""
    return closest_pair(atoms, within)[0]


def bond_graph(atoms, mult: float = BOND_MULT) -> set[tuple[int, int]]:
    """Bonded pairs ``(i, j)``, ``i < j``: closer than ``mult`` times the covalent radii sum."""
    from ase.data import covalent_radii

    if len(atoms) < 2:
        return set()
    radii = mult * covalent_radii[atoms.numbers]
    i, j, d = _pairs(atoms, 2 * float(radii.max()), "ijd")
    keep = d < radii[i] + radii[j]
    i, j = i[keep], j[keep]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return set(zip(lo.tolist(), hi.tolist(), strict=True))


def n_fragments(atoms, mult: float = FRAGMENT_MULT) -> int:
    """Connected pieces of the bond graph (covalent radii x ``mult``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(atoms)
    pairs = np.array(sorted(bond_graph(atoms, mult)), dtype=np.int64).reshape(-1, 2)
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return int(connected_components(adjacency, directed=False)[0])


class Watchdog:
    """Checks an MD state against :class:`Limits`; :meth:`check` raises :class:`MDStopped`.

    ``reference`` is the run's first state (an ``Atoms`` with momenta and, for the drift, a
    calculator or ``reference_energy``): the start of a continued run is its trajectory's
    first frame, not the frame it continues from.
    """

    def __init__(self, limits: Limits, ensemble: str, reference, reference_energy=None):
        self.limits, self.n_atoms = limits, len(reference)
        self.check_drift = limits.max_drift is not None and ensemble == "nve"
        self.check_fragments = bool(limits.fragments) and not reference.pbc.any()
        self.e0 = None
        if self.check_drift:
            e = reference_energy
            if e is None:
                e = reference.get_potential_energy() + reference.get_kinetic_energy()
            self.e0 = float(e)
        self.fragments0 = n_fragments(reference) if self.check_fragments else None
        self.max_drift_seen = 0.0

    def check(self, atoms, step: int) -> None:
        lim = self.limits
        t = float(atoms.get_temperature())
        if lim.max_temperature is not None and not t <= lim.max_temperature:  # NaN too
            raise MDStopped(
                "temperature",
                step,
                f"temperature {t:.0f} K above the limit {lim.max_temperature:.0f} K "
                "(--max-temperature)",
                t,
            )
        if lim.min_distance is not None:
            d = closest_distance(atoms, lim.min_distance)
            if d < lim.min_distance:
                raise MDStopped(
                    "distance",
                    step,
                    f"two atoms {d:.3f} Å apart, closer than "
                    f"{lim.min_distance:g} Å (--min-distance)",
                    d,
                )
        if self.check_drift:
            e = atoms.get_potential_energy() + atoms.get_kinetic_energy()
            drift = abs(float(e) - self.e0) / self.n_atoms
            self.max_drift_seen = max(self.max_drift_seen, drift)
            if not math.isfinite(drift) or drift > lim.max_drift:
                raise MDStopped(
                    "drift",
                    step,
                    f"total energy {1000 * drift:.1f} meV/atom from "
                    f"its start, beyond {1000 * lim.max_drift:g} meV/atom "
                    "(--max-drift)",
                    drift,
                )
        if self.check_fragments:
            pieces = n_fragments(atoms)
            if pieces != self.fragments0:
                raise MDStopped(
                    "fragments",
                    step,
                    f"the structure is in {pieces} fragments, "
                    f"{self.fragments0} at the start (--no-fragment-check to allow)",
                    pieces,
                )


def read_log(path) -> dict[str, np.ndarray]:
    """``mlip md``'s log: a header line of column names, then whitespace-separated rows."""
    with open(path) as f:
        header = f.readline().split()
        rows = [line.split() for line in f if line.strip() and not line.startswith(("#", "Time"))]
    data = np.array(rows, dtype=float).reshape(-1, len(header))
    names = [h.split("[")[0].lower() for h in header]
    return {name: data[:, i] for i, name in enumerate(names)}


def frame_series(frames, min_distance: float = 0.5, reference=None) -> dict[str, list]:
    """Per frame: its MD step, atom count, closest approach (Å; inf beyond 3 Å), fragment
    count, whether its bond graph is still the ``reference``'s (default: the first frame's)
    and, for periodic frames, the density (g/cm³). JSON-ready, so a run continued in another
    session can carry the series of its first part instead of its trajectory (:func:`analyse`).
    """
    from ase import units

    reference = frames[0] if reference is None else reference
    bonds0 = bond_graph(reference)
    out = {"md_step": [], "n_atoms": [], "closest": [], "fragments": [], "bonds_kept": [],
           "density": []}
    for atoms in frames:
        out["md_step"].append(int(atoms.info.get("md_step", len(out["md_step"]))))
        out["n_atoms"].append(len(atoms))
        out["closest"].append(closest_distance(atoms, max(min_distance, 3.0)))
        out["fragments"].append(n_fragments(atoms))
        out["bonds_kept"].append(bond_graph(atoms) == bonds0)
        if atoms.pbc.all():  # amu per Å³ to g/cm³
            out["density"].append(float(atoms.get_masses().sum()) * units._amu * 1e27
                                  / atoms.get_volume())
    return out


def _merge(parts: list[dict]) -> dict[str, list]:
    """Series of consecutive parts of one run, each step once (a continued run's trajectory
    repeats the frame it continued from)."""
    out = {key: [] for key in parts[0]}
    for part in parts:
        for k, step in enumerate(part["md_step"]):
            if out["md_step"] and step <= out["md_step"][-1]:
                continue
            for key in out:
                if part[key]:
                    out[key].append(part[key][k])
    return out


def analyse(log_path, trajectories, min_distance: float = 0.5, keep_series: bool = False,
            max_temperature: float | None = None) -> dict:
    """Energy conservation and stability of a run from its log and trajectory: drift (slope of
    a least-squares line through E_tot(t), meV/atom/ps), largest excursion, temperature range,
    closest approach, when the bond graph changed (reported only: a proton may hop), when
    the structure fragmented and, for periodic runs, the density. ``stable`` is False for
    fragments, atoms below ``min_distance`` or a temperature above ``max_temperature``: by
    default the watchdog's limit for a target at the log's median temperature (a run that
    overheated in its last steps, which the watchdog then stopped, has its median near the
    target).

    ``trajectories``: a trajectory, or the consecutive parts of one run in order, each a
    trajectory or a JSON file of :func:`frame_series` (a part carried from an earlier session).
    ``keep_series`` adds the merged per-frame series under ``"series"``."""
    import json

    import ase.io

    log = read_log(log_path)
    single = isinstance(trajectories, (str, os.PathLike))
    paths = [trajectories] if single else list(trajectories)
    parts, frames, reference = [], [], None
    for path in paths:
        if str(path).endswith(".json"):
            with open(path) as f:
                parts.append(json.load(f))
            continue
        frames = ase.io.read(path, index=":")
        reference = frames[0] if reference is None else reference
        parts.append(frame_series(frames, min_distance, reference))
    series = _merge(parts)
    time_ps, etot = log["time"], log["etot"]
    n_atoms = int(series["n_atoms"][0])
    if len(paths) == 1 and len(frames) == len(time_ps) and frames[0].calc is not None:
        # the trajectory keeps full precision; the log rounds to 0.1 meV
        etot = np.array([a.get_potential_energy() + a.get_kinetic_energy() for a in frames])
    slope = np.polyfit(time_ps, etot, 1)[0] if len(time_ps) > 1 else 0.0
    kept, pieces = series["bonds_kept"], series["fragments"]
    changed_at = next((k for k, same in enumerate(kept) if not same), None)
    broke_at = next((k for k, n in enumerate(pieces) if n != pieces[0]), None)
    closest = float(min(series["closest"]))
    overheated_at, t_limit = None, None
    if "t" in log:
        t_limit = float(max_temperature or default_max_temperature(np.median(log["t"])))
        hot = np.flatnonzero(log["t"] > t_limit)
        overheated_at = float(time_ps[hot[0]]) if hot.size else None
    report = {
        "n_atoms": n_atoms,
        "n_frames": len(series["md_step"]),
        "duration_ps": float(time_ps[-1] - time_ps[0]),
        "drift_mev_per_atom_per_ps": 1000 * float(slope) / n_atoms,
        "max_deviation_mev_per_atom": 1000 * float(np.abs(etot - etot[0]).max()) / n_atoms,
        "energy_std_mev_per_atom": 1000 * float(etot.std()) / n_atoms,
        "temperature_mean": float(log["t"].mean()) if "t" in log else None,
        "temperature_min": float(log["t"].min()) if "t" in log else None,
        "temperature_max": float(log["t"].max()) if "t" in log else None,
        "closest_approach": closest,
        "bond_graph_changed_at_frame": changed_at,
        "fragmented_at_frame": broke_at,
        "temperature_limit": t_limit,
        "overheated_at_ps": overheated_at,
        "stable": broke_at is None and closest >= min_distance and overheated_at is None,
    }
    if series["density"]:
        rho, half = np.asarray(series["density"]), len(series["density"]) // 2
        report |= {
            "density_start": float(rho[0]),
            "density_end": float(rho[-1]),
            "density_mean_second_half": float(rho[half:].mean()),
            "density_std_second_half": float(rho[half:].std()),
        }
        if "t" in log:
            report["temperature_mean_second_half"] = float(log["t"][len(log["t"]) // 2 :].mean())
    if keep_series:
        report["series"] = series
    return report
