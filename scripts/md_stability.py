"""Stability and energy conservation of an MD run written by ``mlip md``.

Reads the MD log (time, temperature, total/potential/kinetic energy) and the trajectory, and
reports what a practitioner checks before trusting a potential in production MD:

- total-energy drift: the slope of a least-squares line through E_tot(t), in meV/atom/ps,
  and the largest excursion of E_tot from its start, in meV/atom;
- the temperature range;
- fragmentation: the number of connected pieces of the bond graph (covalent radii x 1.5); a
  molecule that falls apart, or atoms that come closer than ``--min-distance``, mark the run
  unstable, as does a temperature above ``--max-temperature`` (by default the limit of the
  watchdog that stops ``mlip md``). Changes of the bond graph itself (covalent radii x 1.2)
  are reported but do not count against the run: acac's enol proton may legitimately hop
  between its two oxygens.

    mlip md runs/acac-facet-s-long/best.pt datasets/acac/test_MD_300K.xyz --index 0 \\
        --ensemble nve --temperature 300 --timestep 0.5 --steps 20000 --interval 20 \\
        --dtype float64 --log nve.log --trajectory nve.traj
    python scripts/md_stability.py nve.log nve.traj --json nve.json

A run continued in another session (``mlip md --restart``) is analysed from its whole log and
its parts in order: ``--series part1.json`` writes the per-frame series of what exists so far
(closest approach, fragments, bond graph, density), which can stand in for the first part's
trajectory later: ``md_stability.py run.log part1.json run.traj``; ``--restart-frames``
writes the trajectory's first and last frames, all that ``mlip md --restart`` needs to go on.

Exits 1 when the run is unstable, so it can gate a release. The checks are
:func:`mlip.md_watch.analyse`; ``mlip md`` applies the same limits while it runs (its watchdog).
"""

from __future__ import annotations

import argparse
import json
import sys

# The checks live in the library, beside the watchdog that applies them during `mlip md`.
from mlip._io import atomic_path, atomic_write_text
from mlip.md_watch import analyse, bond_graph, n_fragments, read_log  # noqa: F401


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log")
    parser.add_argument("trajectory", nargs="+",
                        help="the run's trajectory or its parts in order (.traj, --series .json)")
    parser.add_argument("--min-distance", type=float, default=0.5, help="Å (default 0.5)")
    parser.add_argument("--max-temperature", type=float,
                        help="K; the run is unstable above it (default: mlip md's watchdog limit, "
                        "max(5 x the median temperature, 2000 K))")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--series", help="also write the per-frame series (JSON) here")
    parser.add_argument("--restart-frames", help="also write the last trajectory's first and "
                        "last frames here (.traj), to continue the run from")
    args = parser.parse_args(argv)
    report = analyse(args.log, args.trajectory, args.min_distance, keep_series=bool(args.series),
                     max_temperature=args.max_temperature)
    series = report.pop("series", None)
    if args.series:
        atomic_write_text(args.series, json.dumps(series))
    if args.restart_frames:
        import ase.io

        last = args.trajectory[-1]  # two frames read, not the whole trajectory again
        with atomic_path(args.restart_frames) as tmp:
            ase.io.write(tmp, [ase.io.read(last, 0), ase.io.read(last, -1)], format="traj")
    for key, value in report.items():
        print(f"{key:32s} {value:.6g}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0 if report["stable"] else 1


if __name__ == "__main__":
    sys.exit(main())
