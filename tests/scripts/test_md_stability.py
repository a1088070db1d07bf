"""scripts/md_stability.py on synthetic MD output: drift slope, fragmentation, exit code."""

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from tests.helpers import ACAC, load_script


def _module():
    return load_script("md_stability")


def _write_run(tmp_path, drift_ev_per_ps, fly_away=False, n=21, last_temperature=300.0):
    start = ase.io.read(ACAC / "train_300K.xyz", index=0)
    rng = np.random.default_rng(0)
    frames, times = [], np.linspace(0.0, 1.0, n)
    for k, t in enumerate(times):
        atoms = start.copy()
        atoms.positions += rng.normal(0, 0.02, atoms.positions.shape)
        if fly_away and k >= n // 2:
            atoms.positions[-1] += [6.0, 0.0, 0.0]  # an atom leaves the molecule
        atoms.set_momenta(rng.normal(0, 0.1, atoms.positions.shape))
        epot = -100.0 + drift_ev_per_ps * t - atoms.get_kinetic_energy()
        atoms.calc = SinglePointCalculator(atoms, energy=epot)
        frames.append(atoms)
    ase.io.write(tmp_path / "md.traj", frames)
    with open(tmp_path / "md.log", "w") as f:
        f.write("Time[ps]      Etot[eV]     Epot[eV]     Ekin[eV]    T[K]\n")
        for k, (t, a) in enumerate(zip(times, frames)):
            ekin, temp = a.get_kinetic_energy(), (last_temperature if k == n - 1 else 300.0)
            f.write(f"{t:.4f} {a.get_potential_energy() + ekin:.4f} "
                    f"{a.get_potential_energy():.4f} {ekin:.4f} {temp:.1f}\n")
    return tmp_path / "md.log", tmp_path / "md.traj"


def test_drift_is_the_slope_per_atom(tmp_path):
    log, traj = _write_run(tmp_path, drift_ev_per_ps=0.015)
    report = _module().analyse(log, traj)
    assert abs(report["drift_mev_per_atom_per_ps"] - 1.0) < 1e-6  # 15 meV/ps over 15 atoms
    assert report["stable"] and report["fragmented_at_frame"] is None


def test_an_atom_leaving_marks_the_run_unstable(tmp_path):
    log, traj = _write_run(tmp_path, drift_ev_per_ps=0.0, fly_away=True)
    module = _module()
    report = module.analyse(log, traj)
    assert not report["stable"] and report["fragmented_at_frame"] == 10
    assert module.main([str(log), str(traj), "--json", str(tmp_path / "r.json")]) == 1
    assert (tmp_path / "r.json").exists()


def test_a_run_that_overheated_at_its_end_is_unstable(tmp_path):
    # A run the watchdog stopped for its temperature: every frame intact, the last one hot.
    log, traj = _write_run(tmp_path, drift_ev_per_ps=0.0, last_temperature=3164.0)
    module = _module()
    report = module.analyse(log, traj)
    assert report["temperature_limit"] == 2000.0  # max(5 x the median 300 K, 2000 K)
    assert report["overheated_at_ps"] == 1.0 and not report["stable"]
    assert report["fragmented_at_frame"] is None
    assert module.main([str(log), str(traj), "--max-temperature", "4000"]) == 0
    assert module.main([str(log), str(traj)]) == 1


def _periodic_run(tmp_path, n=12):
    """A rattled fcc Cu crystal whose cell grows 1% per frame, frames tagged with md_step."""
    from ase.build import bulk

    rng = np.random.default_rng(1)
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.set_cell(atoms.cell * (1 + 0.01 * k), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.03, atoms.positions.shape)
        atoms.info["md_step"] = 10 * k
        frames.append(atoms)
    with open(tmp_path / "npt.log", "w") as f:
        f.write("Time[ps]      Etot[eV]     Epot[eV]     Ekin[eV]    T[K]\n")
        for k in range(n):
            f.write(f"{0.01 * k:.4f} -10.0 -11.0 1.0 {900 + 10 * k:.1f}\n")
    return frames, tmp_path / "npt.log"


def test_periodic_runs_report_the_density(tmp_path):
    frames, log = _periodic_run(tmp_path)
    ase.io.write(tmp_path / "npt.traj", frames)
    report = _module().analyse(log, tmp_path / "npt.traj")
    mass = 32 * 63.546 * 1.66053906660e-24  # g
    assert abs(report["density_start"] - mass / (7.2**3 * 1e-24)) < 1e-6
    assert report["density_end"] < report["density_mean_second_half"] < report["density_start"]
    assert report["temperature_mean_second_half"] == np.mean([960, 970, 980, 990, 1000, 1010])


def test_a_run_continued_in_another_session_is_analysed_from_its_parts(tmp_path):
    """Part one carried as its --series JSON, part two the continued trajectory (which repeats
    the first frame and the frame it continued from): the same report as the whole trajectory."""
    frames, log = _periodic_run(tmp_path)
    module = _module()
    ase.io.write(tmp_path / "whole.traj", frames)
    ase.io.write(tmp_path / "part1.traj", frames[:7])
    ase.io.write(tmp_path / "part2.traj", [frames[0], *frames[6:]])
    series = tmp_path / "part1.json"
    assert module.main([str(log), str(tmp_path / "part1.traj"), "--series", str(series)]) == 0
    whole = module.analyse(log, tmp_path / "whole.traj")
    parts = module.analyse(log, [series, tmp_path / "part2.traj"])
    assert parts == whole and whole["n_frames"] == 12


def test_restart_frames_are_what_mlip_md_continues_from(tmp_path):
    from mlip.simulate import continue_from

    frames, log = _periodic_run(tmp_path)
    for a in frames:
        a.set_momenta(np.full((len(a), 3), 0.1))
    ase.io.write(tmp_path / "npt.traj", frames)
    out = tmp_path / "restart.traj"
    _module().main([str(log), str(tmp_path / "npt.traj"), "--restart-frames", str(out)])
    atoms, first, step = continue_from(out)
    assert step == 110 and first.info["md_step"] == 0
    np.testing.assert_array_equal(atoms.positions, frames[-1].positions)
    np.testing.assert_array_equal(atoms.cell.array, frames[-1].cell.array)
