"""Molecular dynamics and relaxations through ASE, with any calculator (usually MLIPCalculator).

An MD run streams its log and trajectory (flushed at every line and frame: a killed run leaves
readable files and can be continued from its trajectory), and its summary says whether it
completed or why the watchdog (:mod:`mlip.md_watch`) stopped it. A relaxation's files are
written under a temporary name and renamed when it completes, so a failed relaxation never
leaves a file that looks finished. See docs/md.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from ase import units

from ._io import atomic_path
from .md_watch import Limits, MDStopped, Watchdog, closest_pair, default_max_temperature

log = logging.getLogger("mlip.simulate")

ENSEMBLES = ("nve", "nvt", "npt")
OPTIMIZERS = ("fire", "bfgs")
RELAX_MIN_DISTANCE = 0.5  # Å, as Limits.min_distance of mlip md's watchdog
RELAX_MAX_ENERGY_DROP = 1.0  # eV/atom below the start (_RelaxGuard says why)


class SimulationError(ValueError):
    """A simulation that cannot run as asked (the message says why)."""


def read_structure(path, index=-1):
    """One structure from any file ASE reads; errors name the file."""
    import ase.io

    if not Path(path).is_file():
        raise SimulationError(f"{path}: no such file")
    try:
        atoms = ase.io.read(path, index=index)
    except Exception as err:  # ASE raises many types for unreadable files
        raise SimulationError(f"{path}: cannot read a structure: {err}") from None
    if isinstance(atoms, list):
        raise SimulationError(f"{path}: index {index!r} selects several structures; pick one")
    return atoms


def _dynamics(
    atoms, ensemble, timestep_fs, temperature, friction, tdamp_fs, pressure_gpa, pdamp_fs, seed
):
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "nvt":
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        # The centre of mass stays put through a FixCom constraint: ASE >= 3.28 deprecates
        # Langevin's own fixcm, which does not sample NVT exactly. With constraints of the
        # user's (fixed atoms) the frame is pinned already.
        if not atoms.constraints:
            atoms.set_constraint(FixCom())
        # ASE's friction is in inverse ASE time units; the CLI takes it per fs.
        return Langevin(
            atoms,
            timestep=dt,
            temperature_K=temperature,
            friction=friction / units.fs,
            rng=np.random.default_rng(seed),
            fixcm=False,
        )
    if not atoms.pbc.all():
        raise SimulationError("NPT needs a structure periodic in all three directions")
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    return IsotropicMTKNPT(
        atoms,
        timestep=dt,
        temperature_K=temperature,
        pressure_au=pressure_gpa * units.GPa,
        tdamp=tdamp_fs * units.fs,
        pdamp=pdamp_fs * units.fs,
    )


# The MTK integrator's own state beyond positions, momenta and cell: the barostat momentum
# and both Nose-Hoover chains. Stored in every NPT frame so a continued run is the same run
# (ASE keeps them in private attributes; the restart test breaks if they are renamed).
_NPT_STATE = {"p_eps": (None, "_p_eps"), "eta": ("_thermostat", "_eta"),
              "p_eta": ("_thermostat", "_p_eta"), "xi": ("_barostat", "_xi"),
              "p_xi": ("_barostat", "_p_xi")}


def _npt_state(dyn) -> dict | None:
    try:
        return {key: np.array(getattr(getattr(dyn, part) if part else dyn, name), dtype=float)
                for key, (part, name) in _NPT_STATE.items()}
    except AttributeError:
        return None


def _set_npt_state(dyn, state: dict) -> None:
    for key, (part, name) in _NPT_STATE.items():
        value = np.asarray(state[key], dtype=float)
        setattr(getattr(dyn, part) if part else dyn, name, float(value) if not value.ndim
                else value.copy())


def run_md(
    atoms,
    calculator,
    ensemble: str = "nve",
    temperature: float = 300.0,
    timestep: float = 0.5,
    steps: int = 1000,
    trajectory=None,
    logfile=None,
    interval: int = 10,
    friction: float = 0.01,
    tdamp: float = 100.0,
    pressure: float = 0.0,
    pdamp: float = 1000.0,
    seed: int = 0,
    limits: Limits | None = None,
    restart: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Run MD; velocities start from a Maxwell-Boltzmann distribution at ``temperature`` K.

    ``timestep``, ``tdamp`` and ``pdamp`` in fs, ``friction`` (Langevin) in 1/fs, ``pressure``
    in GPa (NPT: ASE's isotropic MTK Nose-Hoover chains). Every ``interval`` steps, and at
    the last step, the log gets time, temperature and potential, kinetic and total energy,
    and the trajectory a frame (its step in ``info["md_step"]``); both are flushed as they
    are written, so a killed run leaves readable files. Then the watchdog
    (:mod:`mlip.md_watch`, ``limits``; None: the defaults for ``temperature``) checks the
    state and stops the run when it has left physical ground. ``restart`` continues the run
    in ``trajectory`` from its last frame (positions, velocities, cell) up to ``steps`` in
    all, appending to the trajectory and the log; ``atoms`` is then ignored and may be None.
    ``progress`` shows a bar (steps/s, time left) on stderr.

    Returns a summary: status ("completed" or "stopped", with ``stop_reason``,
    ``stop_message`` and ``stopped_at_step``), steps, final temperature, energies and the
    total-energy drift per atom since the run's first frame.
    """
    from ase.io import Trajectory
    from ase.md import MDLogger
    from ase.md.velocitydistribution import Stationary, ZeroRotation
    from tqdm import tqdm

    if ensemble not in ENSEMBLES:
        raise SimulationError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    if timestep <= 0 or steps < 0 or interval < 1:
        raise SimulationError("timestep must be > 0, steps >= 0 and interval >= 1")
    if limits is None:
        limits = Limits(max_temperature=default_max_temperature(temperature))
    start, reference = 0, None
    if restart:
        atoms, reference, start = continue_from(trajectory)
        if start >= steps:
            raise SimulationError(f"{trajectory} already holds step {start} of --steps {steps}")
    else:
        for path in (trajectory, logfile):
            if path is not None and Path(path).exists() and not overwrite:
                raise SimulationError(
                    f"{path} exists; pass --overwrite to replace it or "
                    "--restart to continue its run"
                )
    atoms.calc = calculator
    if not restart:
        _thermalize(atoms, temperature, np.random.default_rng(seed))
        Stationary(atoms)
        if not atoms.pbc.any():
            ZeroRotation(atoms)
    # A continued Langevin run draws from a stream of its own, not the first run's again.
    dyn = _dynamics(
        atoms,
        ensemble,
        timestep,
        temperature,
        friction,
        tdamp,
        pressure,
        pdamp,
        [seed, start] if start else seed,
    )
    dyn.nsteps = start  # log time, frame steps and ASE's observer schedule continue from here
    carried = atoms.info.pop("npt_state", None) if restart else None
    if ensemble == "npt" and carried is not None:
        _set_npt_state(dyn, carried)
    elif ensemble == "npt" and restart:
        log.warning("%s holds no NPT thermostat/barostat state (written by an older mlip): "
                    "the run continues with them at rest", trajectory)
    watchdog = Watchdog(limits, ensemble, reference if reference is not None else atoms)
    first = reference if reference is not None else atoms
    e_start = None
    if first.calc is not None:  # the model's call for the first step, cached
        e_start = first.get_potential_energy() + first.get_kinetic_energy()
    mode = "a" if restart else "w"
    header = not (
        restart
        and logfile is not None
        and Path(logfile).is_file()
        and Path(logfile).stat().st_size > 0
    )
    traj = Trajectory(trajectory, mode, atoms) if trajectory is not None else None
    log_file = open(logfile, mode) if logfile is not None else None  # noqa: SIM115
    bar = tqdm(
        total=steps, initial=start, unit="step", desc="md", disable=not progress, dynamic_ncols=True
    )
    status = {"status": "completed"}
    try:
        logger = MDLogger(dyn, atoms, log_file, header=header) if log_file else None

        def record():
            step = dyn.nsteps
            atoms.info["md_step"] = step
            if ensemble == "npt" and (state := _npt_state(dyn)) is not None:
                atoms.info["npt_state"] = state
            if traj is not None:
                traj.write(atoms)  # ulm syncs (flushes) every frame
            if logger is not None:
                logger()  # MDLogger flushes every line
            bar.set_postfix(T=f"{atoms.get_temperature():.0f} K", refresh=False)
            watchdog.check(atoms, step)

        dyn.attach(record, interval=interval)
        dyn.attach(lambda: bar.update(dyn.nsteps - bar.n), interval=1)
        try:
            dyn.run(steps - start)
            if dyn.nsteps % interval:  # the last state always ends the files (and is checked)
                record()
        except MDStopped as stop:
            status = {
                "status": "stopped",
                "stop_reason": stop.reason,
                "stop_message": str(stop),
                "stopped_at_step": stop.step,
            }
            log.debug("MD stopped at step %d: %s", stop.step, stop)  # the summary says it
    finally:
        bar.close()
        if traj is not None:
            traj.close()
        if log_file is not None:
            log_file.close()
    n = len(atoms)
    e_now = atoms.get_potential_energy() + atoms.get_kinetic_energy()
    done = int(dyn.nsteps)
    return {
        **status,
        "ensemble": ensemble,
        "steps": done - start,
        "total_steps": done,
        "time_ps": done * timestep / 1000,
        "limits": limits.to_dict(),
        "temperature_K": float(atoms.get_temperature()),
        "potential_energy": float(atoms.get_potential_energy()),
        "kinetic_energy": float(atoms.get_kinetic_energy()),
        "total_energy_drift_per_atom": float((e_now - e_start) / n)
        if e_start is not None
        else None,
    }


def _thermalize(atoms, temperature, rng):
    """Maxwell-Boltzmann momenta: ASE >= 3.29 deprecates the old name of the same function."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        return
    thermalize_momenta(atoms, temperature, rng=rng)


def continue_from(trajectory):
    """The last frame of a run's trajectory (positions, momenta, cell), its first frame and
    the step it was written at, for a run to continue from."""
    from ase.io import Trajectory

    if trajectory is None:
        raise SimulationError("--restart continues the run in --trajectory; none was given")
    if not Path(trajectory).is_file():
        raise SimulationError(f"{trajectory}: no such file to continue")
    try:
        with Trajectory(trajectory) as frames:
            if len(frames) == 0:
                raise SimulationError(f"{trajectory} holds no frame to continue from")
            first, last = frames[0], frames[len(frames) - 1]
    except SimulationError:
        raise
    except Exception as err:  # ulm raises several types for a foreign file
        raise SimulationError(f"{trajectory}: cannot read its frames: {err}") from None
    if "md_step" not in last.info:
        raise SimulationError(
            f"{trajectory} was not written by mlip md (no md_step in its "
            "frames); cannot tell where to continue"
        )
    if last.get_momenta() is None or not np.any(last.get_momenta()):
        raise SimulationError(f"{trajectory}: its last frame has no velocities")
    last.calc = None
    return last, first, int(last.info["md_step"])


def relax(
    atoms,
    calculator,
    optimizer: str = "fire",
    fmax: float = 0.05,
    steps: int = 1000,
    cell: bool = False,
    trajectory=None,
    logfile=None,
    constant_volume: bool = False,
    min_distance: float | None = RELAX_MIN_DISTANCE,
    max_energy_drop: float | None = RELAX_MAX_ENERGY_DROP,
) -> dict:
    """Relax positions (and the cell with ``cell``, through FrechetCellFilter) until the largest
    force (and stress, in eV/Å³ times the cell volume per atom) is below ``fmax`` eV/Å;
    ``constant_volume`` relaxes the cell's shape only (a point of an equation of state).

    Every step is checked (:class:`_RelaxGuard`): two atoms closer than ``min_distance`` Å or
    an energy more than ``max_energy_drop`` eV/atom below the start stop the relaxation with a
    SimulationError (None turns a check off)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    if optimizer not in OPTIMIZERS:
        raise SimulationError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if cell and not atoms.pbc.all():
        raise SimulationError("--cell needs a structure periodic in all three directions")
    atoms.calc = calculator
    target = FrechetCellFilter(atoms, constant_volume=constant_volume) if cell else atoms
    cls = FIRE if optimizer == "fire" else BFGS
    with _optional_atomic(trajectory) as traj_path:
        opt = cls(target, logfile=logfile if logfile is not None else None, trajectory=traj_path)
        opt.attach(_RelaxGuard(atoms, opt, min_distance, max_energy_drop))
        converged = bool(opt.run(fmax=fmax, steps=steps))
        if hasattr(opt, "close"):
            opt.close()
    forces = atoms.get_forces()
    return {
        "converged": converged,
        "steps": int(opt.nsteps),
        "energy": float(atoms.get_potential_energy()),
        "max_force": float(np.linalg.norm(forces, axis=1).max()),
        "volume": float(atoms.get_volume()) if atoms.pbc.all() else None,
    }


class _RelaxGuard:
    """An optimizer observer that stops a relaxation leaving physical ground. A learned
    potential can have holes where it never saw data (atoms pressed together, a strained cell):
    an optimizer runs into them and reports a converged structure hundreds of eV below the
    truth. A relaxation from a sensible start lowers the energy by far less than 1 eV/atom, and
    no bond is shorter than 0.5 Å (H2: 0.74 Å; the limit of ``mlip md``'s watchdog)."""

    def __init__(self, atoms, opt, min_distance, max_energy_drop):
        self.atoms, self.opt = atoms, opt
        self.min_distance, self.max_drop = min_distance, max_energy_drop
        self.e0 = float(atoms.get_potential_energy()) if max_energy_drop is not None else None

    def __call__(self):
        a, step = self.atoms, self.opt.nsteps
        if self.min_distance is not None:
            d, i, j = closest_pair(a, self.min_distance)
            if d < self.min_distance:
                s = a.get_chemical_symbols()
                raise SimulationError(
                    f"relaxation stopped at step {step}: atoms {i} ({s[i]}) and {j} ({s[j]}) "
                    f"are {d:.3f} Å apart, closer than {self.min_distance:g} Å: the model "
                    "has no repulsion there (--min-distance)"
                )
        if self.e0 is not None:
            drop = (self.e0 - float(a.get_potential_energy())) / len(a)
            if not drop <= self.max_drop:  # NaN too
                raise SimulationError(
                    f"relaxation stopped at step {step}: the energy fell {drop:.3g} eV/atom "
                    f"below the start, more than {self.max_drop:g} eV/atom: the model has a "
                    "hole here, outside its training data (--max-energy-drop)"
                )


class _optional_atomic:
    """:func:`atomic_path` for a path, or None through unchanged."""

    def __init__(self, path):
        self.path = path
        self._ctx = atomic_path(path) if path is not None else None

    def __enter__(self):
        return self._ctx.__enter__() if self._ctx is not None else None

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc) if self._ctx is not None else False
