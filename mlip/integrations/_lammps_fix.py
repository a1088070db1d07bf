"""The model as LAMMPS's potential: a ``fix external`` callback (see :mod:`.lammps`)."""

from __future__ import annotations

import time
import warnings

import numpy as np
from ase.data import atomic_masses, atomic_numbers, chemical_symbols

from ..data import keys as K
from ..data.graph import frame_to_graph, to
from ._lammps_input import LammpsInputError


class LammpsModelError(RuntimeError):
    """The model could not be evaluated during a LAMMPS run (the step is named)."""


def lammps_cell(lmp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin, cell (rows a, b, c) and periodicity of LAMMPS's restricted triclinic box.

    LAMMPS stores a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz) and atoms in that frame,
    so the cell is exact and no rotation is needed.
    """
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lo = np.array(boxlo, dtype=np.float64)
    lx, ly, lz = np.array(boxhi, dtype=np.float64) - lo
    cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    return lo, cell, np.array(periodicity, dtype=bool)


def _type_map(lmp, elements, model, where: str) -> np.ndarray:
    """Atomic number per LAMMPS type (index 0 unused), refusing incomplete or unknown maps."""
    ntypes = int(lmp.extract_setting("ntypes"))
    elements = list(elements)
    if len(elements) < ntypes:
        missing = ", ".join(str(t) for t in range(len(elements) + 1, ntypes + 1))
        raise LammpsInputError(
            f"{where}: pair_coeff * * names {len(elements)} element(s) for {ntypes} atom "
            f"types: type(s) {missing} have no element"
        )
    if len(elements) > ntypes:
        raise LammpsInputError(
            f"{where}: pair_coeff * * names {len(elements)} elements but the box has only "
            f"{ntypes} atom type(s)"
        )
    known = [int(z) for z in model.elements.tolist()]
    z = np.zeros(ntypes + 1, dtype=np.int64)
    for t, symbol in enumerate(elements, 1):
        if symbol == "NULL":
            raise LammpsInputError(
                f"{where}: type {t} is NULL; pair_style mlip must cover every type "
                "(hybrid pair styles are not supported)"
            )
        if symbol not in atomic_numbers or symbol == "X":
            raise LammpsInputError(f"{where}: type {t}: {symbol!r} is not a chemical element")
        if atomic_numbers[symbol] not in known:
            raise LammpsInputError(
                f"{where}: type {t} is {symbol}, which the model does not know; it knows "
                f"{[chemical_symbols[k] for k in sorted(known)]}"
            )
        z[t] = atomic_numbers[symbol]
    return z


class LammpsPotential:
    """An mlip model as the potential of a running LAMMPS instance (``fix external``).

    Create it once the box exists (after ``read_data`` / ``create_box``), with one element per
    atom type in type order. With ``pair_style=True`` it also issues ``pair_style zero
    CUTOFF`` and ``pair_coeff * *``. Errors inside the callback stop LAMMPS at the end of that
    step (``fix halt``) and are re-raised by :meth:`check`.
    """

    def __init__(
        self,
        lmp,
        model,
        elements,
        device=None,
        dtype=None,
        fix_id: str = "mlip",
        pair_style: bool = True,
        neighbors: str = "vesin",
        where: str = "pair_coeff",
    ):
        import torch

        from ..calculator import _load

        self.lmp, self.fix_id, self.neighbors = lmp, fix_id, neighbors
        units = lmp.extract_global("units")
        if units != "metal":
            raise LammpsInputError(
                f"units {units}: pair_style mlip needs units metal (eV, Å, ps)"
                + (
                    " (lj is LAMMPS's default when no units command is given)"
                    if units == "lj"
                    else ""
                )
            )
        if not lmp.extract_setting("box_exist"):
            raise LammpsInputError(f"{where}: no simulation box yet (read_data or create_box)")
        if int(lmp.extract_setting("dimension")) != 3:
            raise LammpsInputError("pair_style mlip needs a 3d simulation (dimension 3)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = _load(model, self.device, dtype)
        self.type_z = _type_map(lmp, elements, self.model, where)
        self.supported = self.model.elements.tolist()
        self.conservative = bool(self.model.conservative)
        if not self.conservative:
            warnings.warn(
                "this model predicts forces directly (non-conservative): energy is "
                "not conserved and LAMMPS's pressure lacks the model's virial",
                stacklevel=2,
            )
        self.nprocs = int(lmp.extract_setting("world_size"))
        self.rank = int(lmp.extract_setting("world_rank"))
        earlier = [f for f in lmp.available_ids("fix") if f]
        if earlier:
            warnings.warn(
                f"fix(es) {', '.join(earlier)} were defined before pair_coeff: fixes that change "
                "forces (setforce, addforce, langevin, ...) act before the model's forces are "
                "added unless they are defined after pair_coeff",
                stacklevel=2,
            )
        for name in (fix_id, f"{fix_id}_halt"):
            if lmp.has_id("fix", name):
                raise LammpsInputError(f"the input already defines a fix with ID {name}")
        self.error: BaseException | None = None
        self.error_step = None
        self.calls, self.model_seconds, self.callback_seconds = 0, 0.0, 0.0
        self._checked_masses = False
        commands = []
        if pair_style:
            commands += [f"pair_style zero {float(self.model.cutoff)!r}", "pair_coeff * *"]
        commands += [
            f"fix {fix_id} all external pf/callback 1 1",
            f"fix_modify {fix_id} energy yes virial yes",
            f"variable {fix_id}_error internal 0",
            f"fix {fix_id}_halt all halt 1 v_{fix_id}_error > 0 error hard",
        ]
        for command in commands:
            lmp.command(command)
        lmp.set_fix_external_callback(fix_id, self._callback)

    # LAMMPS ignores exceptions raised in a ctypes callback: keep the first, raise the halt flag.
    def _callback(self, caller, step, nlocal, tag, x, f):
        if self.error is not None:
            f[:] = 0.0
            return
        start = time.perf_counter()
        try:
            self._compute(step, nlocal, tag, x, f)
        except BaseException as err:  # noqa: B036 - re-raised by check() after LAMMPS stops
            self.error, self.error_step = err, step
            f[:] = 0.0
            self.lmp.set_internal_variable(f"{self.fix_id}_error", 1.0)
        self.calls += 1
        self.callback_seconds += time.perf_counter() - start

    def _atoms(self, nlocal, tag, x):
        """Types and positions of all atoms, and where this rank's local atoms are among them."""
        if self.nprocs == 1:
            types = self.lmp.numpy.extract_atom("type")[:nlocal]
            return types, np.asarray(x), slice(None)
        # Every rank gathers every atom (collective; all ranks are in this callback together).
        lmp = self.lmp
        ids = np.ctypeslib.as_array(lmp.gather_atoms_concat("id", 0, 1)).copy()
        types = np.ctypeslib.as_array(lmp.gather_atoms_concat("type", 0, 1)).copy()
        pos = np.ctypeslib.as_array(lmp.gather_atoms_concat("x", 1, 3)).reshape(-1, 3).copy()
        order = np.argsort(ids)
        local = order[np.searchsorted(ids, np.asarray(tag).reshape(-1), sorter=order)]
        return types, pos, local

    def _compute(self, step, nlocal, tag, x, f):
        if not self._checked_masses:
            self._check_masses()
        types, pos, local = self._atoms(nlocal, tag, x)
        lo, cell, pbc = lammps_cell(self.lmp)
        frame = {
            K.POSITIONS: pos - lo,
            K.ATOMIC_NUMBERS: self.type_z[types],
            K.CELL: cell,
            K.PBC: pbc,
            "name": f"at LAMMPS step {step}",
        }
        graph = frame_to_graph(frame, self.model.cutoff, self.neighbors, supported=self.supported)
        t0 = time.perf_counter()
        out = self.model(
            to(graph, self.device), compute_forces=True, compute_stress=self.conservative
        )
        forces = out[K.FORCES].detach().cpu().double().numpy()
        node = out[K.NODE_ENERGY].detach().cpu().double().numpy()
        energy = float(out[K.ENERGY].detach().cpu().double().sum())
        if K.STRESS in out:
            # Virial W = -V·σ (σ with ASE's sign), in LAMMPS order xx, yy, zz, xy, xz, yz.
            w = -out[K.STRESS][0].detach().cpu().double().numpy() * abs(np.linalg.det(cell))
            virial = [w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]]
        else:
            virial = [0.0] * 6
        self.model_seconds += time.perf_counter() - t0
        f[:] = forces[local]
        # Global energy and virial are totals, set alike on every rank (LAMMPS does not sum them).
        self.lmp.fix_external_set_energy_global(self.fix_id, energy)
        self.lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in virial])
        self.lmp.numpy.fix_external_set_energy_peratom(self.fix_id, node[local])

    def _check_masses(self):
        # A mass far from the element's is usually a pair_coeff list in the wrong order.
        self._checked_masses = True
        masses = self.lmp.numpy.extract_atom("mass")
        if masses is None:  # per-atom masses (atom_style sphere, ...): nothing to compare
            return
        for t in range(1, len(self.type_z)):
            z = int(self.type_z[t])
            if abs(masses[t] - atomic_masses[z]) > 0.1 * atomic_masses[z]:
                warnings.warn(
                    f"type {t} is {chemical_symbols[z]} ({atomic_masses[z]:.3f} u) "
                    f"but has mass {masses[t]:.3f}: is pair_coeff's order right?",
                    stacklevel=2,
                )

    def check(self) -> None:
        """Raise the first error the callback met, naming the LAMMPS step."""
        if self.error is not None:
            err = self.error
            if isinstance(err, KeyboardInterrupt):
                raise err
            message = str(err)
            if f"LAMMPS step {self.error_step}" not in message:  # graph errors name it already
                message = f"LAMMPS step {self.error_step}: {message}"
            raise LammpsModelError(message) from err

    def summary(self) -> dict:
        return {
            "model_calls": self.calls,
            "atoms": int(self.lmp.get_natoms()),
            "ranks": self.nprocs,
            "rank": self.rank,
            "model_seconds": round(self.model_seconds, 6),
            "callback_seconds": round(self.callback_seconds, 6),
        }
