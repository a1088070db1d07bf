"""Stability and energy conservation of an MD run written by ``mlip md``.

Reads the MD log (time, temperature, total/potential/kinetic energy) and the trajectory, and
reports what a practitioner checks before trusting a potential in production MD:

- total-energy drift: the slope of a least-squares line through E_tot(t), in meV/atom/ps,
  and the largest excursion of E_tot from its start, in meV/atom;
- the temperature range;
- fragmentation: the number of connected pieces of the bond graph (covalent radii x 1.5); a
  molecule that falls apart, or atoms that come closer than ``--min-distance``, mark the run
  unstable. Changes of the bond graph itself (covalent radii x 1.2) are reported but do not
  count against the run: acac's enol proton may legitimately hop between its two oxygens.

    mlip md runs/acac-facet-s-long/best.pt datasets/acac/test_MD_300K.xyz --index 0 \\
        --ensemble nve --temperature 300 --timestep 0.5 --steps 20000 --interval 20 \\
        --dtype float64 --log nve.log --trajectory nve.traj
    python scripts/md_stability.py nve.log nve.traj --json nve.json

Exits 1 when the run is unstable, so it can gate a release.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def read_log(path) -> dict[str, np.ndarray]:
    """``mlip md``'s log: a header line of column names, then whitespace-separated rows."""
    with open(path) as f:
        header = f.readline().split()
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    data = np.array(rows, dtype=float)
    names = [h.split("[")[0].lower() for h in header]
    return {name: data[:, i] for i, name in enumerate(names)}


def bond_graph(atoms, mult: float = 1.2) -> set[tuple[int, int]]:
    from ase.neighborlist import NeighborList, natural_cutoffs

    nl = NeighborList(natural_cutoffs(atoms, mult=mult), self_interaction=False,
                      bothways=False, skin=0.0)
    nl.update(atoms)
    return {(i, int(j)) if i < j else (int(j), i)
            for i in range(len(atoms)) for j in nl.get_neighbors(i)[0]}


def n_fragments(atoms) -> int:
    parent = list(range(len(atoms)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in bond_graph(atoms, mult=1.5):
        parent[find(i)] = find(j)
    return len({find(i) for i in range(len(atoms))})


def analyse(log_path, traj_path, min_distance: float = 0.5) -> dict:
    import ase.io

    log = read_log(log_path)
    frames = ase.io.read(traj_path, index=":")
    n_atoms = len(frames[0])
    time_ps = log["time"]
    etot = log["etot"]
    if len(frames) == len(time_ps) and frames[0].calc is not None:
        # the trajectory keeps full precision; the log rounds to 0.1 meV
        etot = np.array([a.get_potential_energy() + a.get_kinetic_energy() for a in frames])
    slope, _ = np.polyfit(time_ps, etot, 1)
    bonds0, pieces0 = bond_graph(frames[0]), n_fragments(frames[0])
    changed_at, broke_at, closest = None, None, np.inf
    for k, atoms in enumerate(frames):
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        closest = min(closest, float(d[np.triu_indices(n_atoms, 1)].min()))
        if changed_at is None and bond_graph(atoms) != bonds0:
            changed_at = k
        if broke_at is None and n_fragments(atoms) != pieces0:
            broke_at = k
    stable = broke_at is None and closest >= min_distance
    return {
        "n_atoms": n_atoms, "n_frames": len(frames), "duration_ps": float(time_ps[-1] - time_ps[0]),
        "drift_mev_per_atom_per_ps": 1000 * float(slope) / n_atoms,
        "max_deviation_mev_per_atom": 1000 * float(np.abs(etot - etot[0]).max()) / n_atoms,
        "energy_std_mev_per_atom": 1000 * float(etot.std()) / n_atoms,
        "temperature_mean": float(log["t"].mean()) if "t" in log else None,
        "temperature_min": float(log["t"].min()) if "t" in log else None,
        "temperature_max": float(log["t"].max()) if "t" in log else None,
        "closest_approach": closest, "bond_graph_changed_at_frame": changed_at,
        "fragmented_at_frame": broke_at,
        "stable": stable,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log")
    parser.add_argument("trajectory")
    parser.add_argument("--min-distance", type=float, default=0.5, help="Å (default 0.5)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    report = analyse(args.log, args.trajectory, args.min_distance)
    for key, value in report.items():
        print(f"{key:32s} {value:.6g}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["stable"] else 1


if __name__ == "__main__":
    sys.exit(main())
