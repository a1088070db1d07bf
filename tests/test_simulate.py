"""run_md streams its output, continues a run from its trajectory, and stops an unstable one;
relax stops at a hole in the potential."""

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

import mlip
from mlip.md_watch import read_log
from mlip.simulate import SimulationError, continue_from, relax, run_md


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = mlip.build_model(
        "equivariant", elements=[1, 6, 8], lmax=1, channels=4, num_layers=1, dtype="float64"
    )
    return m.eval()


class _Failing(mlip.MLIPCalculator):
    """Raises on its ``fail_at``-th model call, as a crash or a kill mid-run would end it."""

    def __init__(self, model, fail_at):
        super().__init__(model)
        self.calls, self.fail_at = 0, fail_at

    def calculate(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("killed")
        super().calculate(*args, **kwargs)


def test_a_run_that_dies_leaves_readable_files_and_continues_exactly(model, tmp_path):
    traj, log = tmp_path / "md.traj", tmp_path / "md.log"
    kwargs = dict(ensemble="nve", timestep=0.5, steps=40, interval=5, logfile=log)
    with pytest.raises(RuntimeError, match="killed"):
        run_md(molecule("CH3OH"), _Failing(model, fail_at=24), trajectory=traj, **kwargs)
    frames = ase.io.read(traj, index=":")
    assert [a.info["md_step"] for a in frames] == [0, 5, 10, 15, 20]
    assert len(read_log(log)["time"]) == 5  # a log line per frame, flushed
    atoms, first, step = continue_from(traj)
    assert step == 20 and np.any(atoms.get_momenta())
    summary = run_md(None, mlip.MLIPCalculator(model), trajectory=traj, restart=True, **kwargs)
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert summary["total_steps"] == 40
    frames = ase.io.read(traj, index=":")
    assert [a.info["md_step"] for a in frames] == list(range(0, 45, 5))
    times = read_log(log)["time"]
    np.testing.assert_allclose(times, np.arange(9) * 5 * 0.5e-3, atol=1e-9)
    # NVE from the stored positions and momenta (float64) is the uninterrupted run
    whole = tmp_path / "whole.traj"
    run_md(
        molecule("CH3OH"),
        mlip.MLIPCalculator(model),
        trajectory=whole,
        **{**kwargs, "logfile": None},
    )
    ref = ase.io.read(whole, index=-1)
    np.testing.assert_allclose(frames[-1].positions, ref.positions, rtol=0, atol=1e-10)
    np.testing.assert_allclose(frames[-1].get_momenta(), ref.get_momenta(), rtol=0, atol=1e-10)


def test_a_continued_npt_run_is_the_uninterrupted_run(tmp_path):
    """The MTK barostat momentum and both Nose-Hoover chains travel in the frames: continued
    from step 10, the run reaches the same positions, momenta and cell at step 20."""
    from ase.build import bulk

    start = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(2)  # expanded: the barostat works
    kwargs = dict(ensemble="npt", timestep=2.0, temperature=600, interval=5, tdamp=20.0,
                  pdamp=100.0)
    whole, part = tmp_path / "whole.traj", tmp_path / "part.traj"
    run_md(start.copy(), EMT(), steps=20, trajectory=whole, **kwargs)
    run_md(start.copy(), EMT(), steps=10, trajectory=part, **kwargs)
    state = ase.io.read(part, index=-1).info["npt_state"]
    assert abs(state["p_eps"]) > 0 and np.any(state["p_eta"]) and np.any(state["p_xi"])
    run_md(None, EMT(), steps=20, trajectory=part, restart=True, **kwargs)
    ref, got = ase.io.read(whole, index=-1), ase.io.read(part, index=-1)
    assert got.info["md_step"] == 20
    np.testing.assert_allclose(got.positions, ref.positions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.get_momenta(), ref.get_momenta(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.cell.array, ref.cell.array, rtol=0, atol=1e-10)


def test_existing_output_is_kept_unless_asked(model, tmp_path):
    traj = tmp_path / "md.traj"
    run_md(molecule("H2O"), mlip.MLIPCalculator(model), steps=2, trajectory=traj)
    with pytest.raises(SimulationError, match="--overwrite"):
        run_md(molecule("H2O"), mlip.MLIPCalculator(model), steps=2, trajectory=traj)
    run_md(molecule("H2O"), mlip.MLIPCalculator(model), steps=2, trajectory=traj, overwrite=True)
    with pytest.raises(SimulationError, match="already holds step 2"):
        run_md(None, mlip.MLIPCalculator(model), steps=2, trajectory=traj, restart=True)
    ase.io.write(tmp_path / "foreign.traj", molecule("H2O"))
    with pytest.raises(SimulationError, match="not written by mlip md"):
        continue_from(tmp_path / "foreign.traj")
    with pytest.raises(SimulationError, match="no such file"):
        continue_from(tmp_path / "missing.traj")


def test_an_unstable_model_is_stopped_and_its_run_so_far_is_readable(model, tmp_path):
    hot = mlip.build_model(
        "equivariant", elements=[1, 6, 8], lmax=1, channels=4, num_layers=1, dtype="float64"
    )
    hot.load_state_dict(model.state_dict())
    hot.set_scale(-30.0)  # the wrong sign, and strong: the molecule heats up in a few steps
    traj, log = tmp_path / "hot.traj", tmp_path / "hot.log"
    summary = run_md(
        molecule("CH3OH"),
        mlip.MLIPCalculator(hot.eval()),
        steps=200,
        interval=2,
        trajectory=traj,
        logfile=log,
    )
    assert summary["status"] == "stopped" and summary["stop_reason"] == "temperature"
    assert "--max-temperature" in summary["stop_message"]
    step = summary["stopped_at_step"]
    assert 0 < step < 200 and summary["total_steps"] == step
    frames = ase.io.read(traj, index=":")
    assert frames[-1].info["md_step"] == step and len(frames) == step // 2 + 1
    assert frames[-1].get_temperature() > 2000
    assert read_log(log)["t"][-1] > 2000


@pytest.mark.parametrize("ensemble", ["nve", "nvt"])
def test_a_default_cpu_run_warns_about_nothing(model, ensemble):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = run_md(
            molecule("H2O"), mlip.MLIPCalculator(model, device="cpu"), ensemble=ensemble, steps=2
        )
    assert summary["status"] == "completed"


class _Hole(Calculator):
    """Two-body attraction without repulsion, E = -A sum exp(-r^2): the hole a learned
    potential can have where it saw no data."""

    implemented_properties = ("energy", "free_energy", "forces")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        diff = pos[:, None] - pos[None]
        g = -10.0 * np.exp(-(diff**2).sum(-1))
        np.fill_diagonal(g, 0.0)
        self.results["energy"] = self.results["free_energy"] = 0.5 * g.sum()
        self.results["forces"] = (2 * g[..., None] * diff).sum(1)


def test_a_relaxation_into_a_hole_is_stopped_naming_the_atoms(tmp_path):
    atoms = Atoms("OH", positions=[[0, 0, 0], [2.0, 0, 0]])
    with pytest.raises(SimulationError, match=r"fell \S+ eV/atom below the start"):
        relax(atoms.copy(), _Hole(), trajectory=tmp_path / "r.traj")
    assert not (tmp_path / "r.traj").exists()  # a stopped relaxation leaves no finished file
    with pytest.raises(SimulationError, match=r"atoms 0 \(O\) and 1 \(H\) are 0\.\d+ Å apart"):
        relax(atoms.copy(), _Hole(), max_energy_drop=None)
    # both checks off: the optimizer runs into the hole and reports nothing
    summary = relax(atoms.copy(), _Hole(), min_distance=None, max_energy_drop=None, steps=200)
    assert summary["energy"] < -9


def test_a_sound_relaxation_passes_the_checks():
    atoms = molecule("H2O")
    atoms.positions[0] += 0.1
    summary = relax(atoms, EMT(), fmax=0.01)
    assert summary["converged"]
