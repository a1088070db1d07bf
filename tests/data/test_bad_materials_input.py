"""Bad periodic input is refused or skipped naming the file, frame and key (issue #22): a stress
without a cell, a virial of the wrong shape, an OUTCAR cut in the middle, a slab asked for its
stress."""

import pytest
from ase.build import fcc111

import mlip
from mlip.data.readers import DataError, read_frames
from tests.helpers import shared

HEADER = 'Lattice="5 0 0 0 5 0 0 0 5" pbc="T T T"'


def _xyz(tmp_path, info, name="d.xyz"):
    path = tmp_path / name
    path.write_text(f"2\n{info} energy=-1.0\nH 0 0 0\nH 0 0 0.74\n")
    return path


def test_stress_without_a_periodic_cell_is_a_bad_record(tmp_path):
    path = _xyz(tmp_path, 'stress="0.1 0 0 0 0.1 0 0 0 0.1" pbc="F F F"')
    stream = read_frames(path, max_bad_fraction=1.0)
    assert list(stream) == []
    assert "d.xyz:0: key 'stress': a stress needs a 3D periodic cell" in stream.bad[0]
    good = _xyz(tmp_path, f'{HEADER} stress="0.1 0 0 0 0.1 0 0 0 0.1"', "ok.xyz")
    assert len(list(read_frames(good))) == 1


def test_virial_of_the_wrong_shape_is_skipped(tmp_path):
    path = _xyz(tmp_path, f'{HEADER} virial="0.1 0 0 0 0.1"')
    stream = read_frames(path, max_bad_fraction=1.0)
    assert list(stream) == []
    assert "d.xyz:0" in stream.bad[0] and "virial" in stream.bad[0]


def test_outcar_cut_in_the_middle(tmp_path):
    lines = shared("hfo2/outcars/label_1/OUTCAR_1").read_text().splitlines(keepends=True)
    whole = tmp_path / "OUTCAR_whole"
    whole.write_text("".join(lines))
    assert len(list(read_frames(whole))) == 1
    cut = tmp_path / "OUTCAR_cut"
    cut.write_text("".join(lines[: len(lines) * 2 // 3]))
    with pytest.raises(DataError, match="OUTCAR_cut:0: key 'OUTCAR': the file ends inside"):
        list(read_frames(cut))


def test_slab_asked_for_stress():
    slab = fcc111("Cu", (2, 2, 3), periodic=False)
    slab.pbc = [True, True, False]  # the third cell vector is zero
    slab.calc = mlip.MLIPCalculator(mlip.build_model("nequip-like", elements=[29],
                                                     dtype="float64"))
    assert slab.get_forces().shape == (12, 3)  # energy and forces are fine
    with pytest.raises(Exception, match=r"stress of Cu12: a stress needs a cell periodic"):
        slab.get_stress()
