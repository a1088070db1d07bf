"""Run an mlip model inside LAMMPS through ``fix external`` (docs/lammps.md).

LAMMPS keeps everything it owns (integrators, thermostats, barostats, computes, dumps) and
calls back into Python once per step for energy, forces and virial: ``pair_style zero`` at the
model's cutoff fills the pair slot, and a ``fix external`` with ``fix_modify energy yes virial
yes`` carries the model's contribution into ``pe``, ``press`` and the minimizer's objective.

Two entry points: :func:`run_lammps` runs an input script written with ``pair_style mlip`` and
``pair_coeff * * EL...``; :class:`LammpsPotential` attaches a model to a LAMMPS instance that
Python code drives itself.

With several MPI ranks every rank gathers all atoms and evaluates the whole model, so forces
never come from a rank's local atoms alone; it is correct but not faster than one rank.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import numpy as np

from ._lammps_fix import LammpsModelError, LammpsPotential, lammps_cell
from ._lammps_input import LammpsInputError, parse_input
from ._lammps_lib import LammpsNotAvailable, import_lammps, start_lammps

__all__ = [
    "LammpsInputError",
    "LammpsModelError",
    "LammpsNotAvailable",
    "LammpsPotential",
    "import_lammps",
    "lammps_cell",
    "read_thermo",
    "run_lammps",
]


def run_lammps(
    model,
    input,
    variables: dict | None = None,
    log: str | None = "log.lammps",
    screen: str | None = None,
    device=None,
    dtype=None,
    neighbors: str = "vesin",
    cmdargs: list[str] | None = None,
) -> dict:
    """Run the LAMMPS input script ``input`` with ``pair_style mlip`` computed by ``model``.

    ``model`` is a checkpoint path, a pretrained model name or a :class:`Potential`;
    ``variables`` maps names to a value or a list of values (LAMMPS's ``-var``); ``log`` and
    ``screen`` are LAMMPS's ``-log`` and ``-screen`` (None: "none" for the log, LAMMPS's
    default for the screen). Returns a summary of the model calls.
    """
    import torch

    from ..calculator import _load

    lammps_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    import_lammps()  # fail before loading the model when LAMMPS is missing
    potential = _load(model, lammps_device, dtype)
    script = parse_input(input, potential.cutoff)
    args = ["-log", log or "none"] + (["-screen", screen] if screen else [])
    for name, values in (variables or {}).items():
        values = [values] if isinstance(values, (str, int, float)) else list(values)
        args += ["-var", str(name), *[str(v) for v in values]]
    args += list(cmdargs or [])
    start = time.perf_counter()
    lmp = start_lammps(args)
    try:
        with tempfile.TemporaryDirectory(prefix="mlip-lammps-") as tmp:
            before, after = Path(tmp) / "before.lmp", Path(tmp) / "after.lmp"
            before.write_text(script.before)
            after.write_text(script.after)
            _lammps_file(lmp, before, script.path)
            where = f"{script.path} line {script.pair_coeff_line}"
            elements = script.elements
            if any("$" in e for e in elements):
                elements = lmp.expand(" ".join(elements)).split()
            attached = LammpsPotential(
                lmp,
                potential,
                elements,
                device=lammps_device,
                neighbors=neighbors,
                pair_style=False,
                where=where,
            )
            try:
                _lammps_file(lmp, after, script.path)
            except LammpsInputError:
                attached.check()
                raise
            attached.check()
        summary = attached.summary()
        summary["wall_seconds"] = round(time.perf_counter() - start, 6)
        return summary
    finally:
        lmp.close()


def _lammps_file(lmp, path, name):
    try:
        lmp.file(str(path))
    except Exception as err:  # LAMMPS raises a bare Exception("ERROR: ...")
        text = " ".join(str(err).split()) or type(err).__name__
        text = re.sub(r"\s*\(src/[^)]*\)", "", text)  # LAMMPS's source location
        raise LammpsInputError(f"LAMMPS stopped running {name}: {text}") from None


def read_thermo(log) -> dict[str, np.ndarray]:
    """The thermo output of a LAMMPS log file as columns keyed by LAMMPS's names (``Step``,
    ``Time``, ``Temp``, ``Press``, ``Volume``, ...), the rows of every ``run`` in order. A
    continued run's repeated first row is kept once. Raises ValueError naming the file when it
    has no thermo table or when two runs print different columns."""
    names, rows = None, []
    inside = False
    for line in Path(log).read_text().splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            if names is not None and words != names:
                raise ValueError(
                    f"{log}: runs print different thermo columns ({names} and {words})"
                )
            names, inside = words, True
            continue
        if inside:
            try:
                row = [float(w) for w in words]
            except ValueError:
                row = None
            if row is None or len(row) != len(names):
                inside = False  # "Loop time of ...", a warning or a blank line ends the table
                continue
            if not rows or row[0] != rows[-1][0]:
                rows.append(row)
    if names is None or not rows:
        raise ValueError(f"{log}: no thermo output (no line starting with 'Step')")
    table = np.array(rows)
    return {name: table[:, i] for i, name in enumerate(names)}
