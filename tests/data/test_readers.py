"""Readers: key aliases, unit and sign conversions, charge/spin, bad records, broken files."""

import json

import ase.db
import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlip.data import frame_to_graph
from mlip.data import keys as K
from mlip.data.readers import DataError, read_frames, read_mptrj, read_oc20
from mlip.data.validate import StructureError
from tests.helpers import ACAC, SAMPLES, shared


def test_tial_force_alias_and_virial_become_forces_and_stress():
    path = shared("tial/TiAl_tutorial.xyz")
    frames = list(read_frames(path))
    assert len(frames) == 329 and frames[0]["name"] == f"{path}:0"
    # Worked from the first frame's text: force column, virial 9 numbers, orthorhombic cell.
    f0 = frames[0]
    np.testing.assert_array_equal(f0[K.FORCES][1], [-0.86219, -0.78737, -2.65969])
    volume = 2.614036117884091 * 2.6528336296738044 * 3.8250280122051756
    assert f0[K.STRESS][0, 0] == pytest.approx(-5.072173561696366 / volume, rel=1e-14)
    assert f0[K.STRESS][1, 2] == pytest.approx(-0.5969893898844183 / volume, rel=1e-14)
    assert f0[K.ENERGY] == -1703.64063822


def test_hfo2_extxyz_stress_and_outcar():
    frames = list(read_frames(shared("hfo2/hfo2.extxyz")))
    assert frames[0][K.STRESS][1, 2] == 0.0027361028385316957
    assert frames[0][K.ENERGY] == -347.81221934
    outcar = shared("hfo2/outcars/label_1/OUTCAR_1")
    (frame,) = list(read_frames(outcar))
    atoms = ase.io.read(outcar, format="vasp-out")
    np.testing.assert_array_equal(frame[K.FORCES], atoms.get_forces())
    np.testing.assert_array_equal(frame[K.STRESS], atoms.get_stress(voigt=False))


def test_caller_keys_and_ref_aliases(tmp_path):
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.info["REF_energy"] = -14.2
    atoms.info["my_energy"] = -1.0
    atoms.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3)
    ase.io.write(tmp_path / "a.xyz", atoms, format="extxyz")
    (f,) = list(read_frames(tmp_path / "a.xyz"))
    assert f[K.ENERGY] == -14.2 and f[K.FORCES][2, 2] == 8.0
    (f,) = list(read_frames(tmp_path / "a.xyz", energy_key="my_energy"))
    assert f[K.ENERGY] == -1.0
    stream = read_frames(tmp_path / "a.xyz", forces_key="absent", max_bad_fraction=1.0)
    assert list(stream) == [] and stream.n_bad == 1 and "key 'forces'" in stream.bad[0]


def test_ase_sqlite_db_with_singlepoint_results():
    frames = list(read_frames(shared("oxides/oxides.db")))
    assert len(frames) == 295
    row = ase.db.connect(shared("oxides/oxides.db")).get(id=1)
    np.testing.assert_array_equal(frames[0][K.FORCES], row.forces)
    assert frames[0][K.ENERGY] == row.energy


def _mptrj_frame(stress, energy=-10.0):
    lattice = {"matrix": [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]], "pbc": [True] * 3}
    sites = [
        {"species": [{"element": "Na", "occu": 1}], "xyz": [0.0, 0.0, 0.0], "abc": [0, 0, 0]},
        {"species": [{"element": "Cl", "occu": 1}], "xyz": [1.5, 1.5, 1.5], "abc": [0.5] * 3},
    ]
    return {
        "structure": {"lattice": lattice, "sites": sites},
        "uncorrected_total_energy": energy + 0.5,
        "corrected_total_energy": energy,
        "energy_per_atom": energy / 2,
        "ef_per_atom": -2.0,
        "force": [[0.1, 0, 0], [-0.1, 0, 0]],
        "stress": stress,
        "magmom": None,
    }


def test_mptrj_stress_kbar_to_ev_per_a3_by_hand(tmp_path):
    stress = [[10.0, 0, 0], [0, 0, 0], [0, 0, -5.0]]  # kBar, VASP: positive = compressed
    (tmp_path / "m.json").write_text(json.dumps({"mp-1": {"mp-1-0": _mptrj_frame(stress)}}))
    (f,) = list(read_mptrj(tmp_path / "m.json"))
    # 10 kBar = 1 GPa = 1 / 160.21766 eV/Å^3; compression becomes negative (ASE sign).
    assert f[K.STRESS][0, 0] == pytest.approx(-1 / 160.21766208, rel=1e-9)
    assert f[K.STRESS][2, 2] == pytest.approx(0.5 / 160.21766208, rel=1e-9)
    assert f[K.ENERGY] == -10.0 and f["name"].endswith("m.json:mp-1/mp-1-0")
    (f,) = list(read_mptrj(tmp_path / "m.json", energy="uncorrected_total_energy"))
    assert f[K.ENERGY] == -9.5
    (f,) = list(read_mptrj(tmp_path / "m.json", energy="ef_per_atom"))
    assert f[K.ENERGY] == -4.0


def test_mptrj_sample_matches_json(tmp_path):
    frames = list(read_frames(SAMPLES / "mptrj_sample.json"))
    doc = json.loads((SAMPLES / "mptrj_sample.json").read_text())
    items = [item for mp in doc.values() for item in mp.values()]
    assert len(frames) == len(items) == 5
    for f, item in zip(frames, items):
        np.testing.assert_array_equal(f[K.FORCES], item["force"])
        assert f[K.ENERGY] == item["corrected_total_energy"]
    # The sample came from hfo2.extxyz: the stress survives kBar and back.
    ref = list(read_frames(shared("hfo2/hfo2.extxyz")))[0]
    np.testing.assert_allclose(frames[0][K.STRESS], ref[K.STRESS], rtol=1e-12, atol=1e-15)


def test_oc20_referenced_energy_tags_and_fixed_atoms():
    path = SAMPLES / "oc20_s2ef_sample.extxyz"
    frames = list(read_oc20(path))
    total = list(read_oc20(path, energy="total"))
    assert len(frames) == 3
    assert frames[0][K.ENERGY] == pytest.approx(-135.66393572 - -130.0, abs=1e-12)
    assert total[0][K.ENERGY] == -135.66393572
    atoms = ase.io.read(shared("oc20/oc20_frame_atoms.json"))
    fixed = np.zeros(len(atoms), bool)
    fixed[atoms.constraints[0].get_indices()] = True
    np.testing.assert_array_equal(frames[0][K.FIXED], fixed)
    np.testing.assert_array_equal(frames[0][K.TAGS], atoms.get_tags())
    # Forces on fixed atoms are the raw DFT forces, not zeroed by the constraint.
    np.testing.assert_array_equal(frames[0][K.FORCES], atoms.get_forces(apply_constraint=False))
    g = frame_to_graph(frames[0], 5.0)
    assert g[K.FIXED].sum() == fixed.sum()


def test_oc20_reference_lines_must_pair_with_frames(tmp_path):
    for name in ("c.extxyz", "c.txt"):
        src = SAMPLES / name.replace("c.", "oc20_s2ef_sample.")
        (tmp_path / name).write_text(src.read_text())
    (tmp_path / "c.txt").write_text("random1,frame0,-1.0\n")
    with pytest.raises(DataError, match="fewer reference lines"):
        list(read_frames(tmp_path / "c.extxyz"))


def test_aselmdb_charge_and_spin_reach_the_graph():
    frames = list(read_frames(SAMPLES / "omol_sample.aselmdb"))
    db = ase.db.connect(SAMPLES / "omol_sample.aselmdb", type="aselmdb", readonly=True)
    for f, row in zip(frames, db.select()):
        assert f[K.CHARGE] == row.data["charge"] and f[K.SPIN] == row.data["spin"]
    charged = next(f for f in frames if f[K.CHARGE] != 0)
    g = frame_to_graph(charged, 5.0)
    assert g[K.CHARGE].item() == charged[K.CHARGE] and g[K.SPIN].item() == charged[K.SPIN]


def test_aselmdb_invalid_multiplicity_is_refused(tmp_path):
    path = tmp_path / "bad.aselmdb"
    water = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with ase.db.connect(path, type="aselmdb") as db:
        for spin in (1, 2):  # 10 electrons: a doublet is impossible
            water.calc = SinglePointCalculator(water, energy=-1.0, forces=np.zeros((3, 3)))
            db.write(water, data={"charge": 0, "spin": spin})
    stream = read_frames(path, max_bad_fraction=0.5)
    assert len(list(stream)) == 1 and stream.n_bad == 1
    assert "spin multiplicity 2 is impossible" in stream.bad[0] and f"{path}:2" in stream.bad[0]
    with pytest.raises(DataError, match="1 bad of 2"):
        list(read_frames(path))
    with pytest.raises(StructureError, match="impossible"):
        frame_to_graph({**list(stream)[0], K.SPIN: np.float64(2)}, 5.0)


def _write_frames(path, n, bad: dict):
    lines = (ACAC / "train_300K.xyz").read_text().splitlines(keepends=True)
    out = []
    for i in range(n):
        block = lines[17 * i : 17 * (i + 1)]
        if i in bad:
            block = bad[i](block)
        out += block
    path.write_text("".join(out))


def test_bad_records_are_counted_and_the_threshold_enforced(tmp_path, caplog):
    def nan_force(block):
        fields = block[2].split()
        return [block[0], block[1], " ".join(fields[:-1] + ["nan"]) + "\n"] + block[3:]

    def unknown_element(block):
        return [block[0], block[1], "Xx" + block[2][1:]] + block[3:]

    path = tmp_path / "mixed.xyz"
    _write_frames(path, 20, {3: nan_force, 11: unknown_element})
    stream = read_frames(path, max_bad_fraction=0.1)
    frames = list(stream)
    assert len(frames) == 18 and stream.n_bad == 2
    assert f"{path}:3: key 'forces'" in stream.bad[0] and f"{path}:11" in stream.bad[1]
    assert "skipping bad record" in caplog.text
    with pytest.raises(DataError, match=r"2 bad of 20 records"):
        list(read_frames(path))  # default 1%


def test_wrong_atom_count_and_misshapen_stress(tmp_path):
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=np.eye(3) * 5, pbc=True)
    atoms.info["stress"] = np.arange(5.0)
    ase.io.write(tmp_path / "s.xyz", atoms, format="extxyz")
    stream = read_frames(tmp_path / "s.xyz", max_bad_fraction=1.0)
    assert list(stream) == [] and "stress" in stream.bad[0]
    from mlip.data.readers import check_record
    from mlip.data.readers._common import BadRecord

    frame = {K.POSITIONS: np.zeros((2, 3)), K.ATOMIC_NUMBERS: np.ones(2, int),
             K.CELL: np.zeros((3, 3)), K.PBC: np.zeros(3, bool), K.FORCES: np.zeros((3, 3)),
             "name": "x:1"}  # fmt: skip
    with pytest.raises(BadRecord, match=r"x:1: key 'forces'.*atom count 3 != 2"):
        check_record(frame)


# ase-db-backends' LMDBDatabase.__del__ retries the open that failed; harmless, but noisy.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_truncated_and_corrupt_files_give_clear_errors(tmp_path):
    text = (ACAC / "train_300K.xyz").read_text()
    (tmp_path / "t.xyz").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"t.xyz:\d+: file ends inside frame .*truncated"):
        list(read_frames(tmp_path / "t.xyz"))
    mp = (SAMPLES / "mptrj_sample.json").read_text()
    (tmp_path / "mptrj_cut.json").write_text(mp[: len(mp) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        list(read_frames(tmp_path / "mptrj_cut.json"))
    (tmp_path / "junk.aselmdb").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DataError, match="junk.aselmdb"):
        list(read_frames(tmp_path / "junk.aselmdb"))
    (tmp_path / "junk.db").write_bytes(b"not sqlite" * 100)
    with pytest.raises(DataError, match="junk.db"):
        list(read_frames(tmp_path / "junk.db"))


def test_compressed_extxyz_streams(tmp_path):
    import lzma

    with lzma.open(tmp_path / "a.xyz.xz", "wt") as f:
        f.write((ACAC / "isolated_atoms.xyz").read_text())
    plain = list(read_frames(ACAC / "isolated_atoms.xyz"))
    packed = list(read_frames(tmp_path / "a.xyz.xz"))
    assert [f[K.ENERGY] for f in packed] == [f[K.ENERGY] for f in plain]
