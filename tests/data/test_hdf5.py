"""HDF5 cache: every format -> HDF5 -> graph equals the source read directly, in float64."""

import argparse
import json

import h5py
import numpy as np
import pytest
import torch

from mlip.data import frame_to_graph
from mlip.data import keys as K
from mlip.data.hdf5 import HDF5Dataset, convert
from mlip.data.readers import DataError, read_frames
from tests.helpers import ACAC, SAMPLES, shared

SOURCES = {
    "extxyz_virial": lambda: (shared("tial/TiAl_tutorial.xyz"), {}),
    "extxyz_stress": lambda: (shared("hfo2/hfo2.extxyz"), {}),
    "outcar": lambda: (shared("hfo2/outcars/label_2/OUTCAR_6"), {"format": "vasp-out"}),
    "asedb": lambda: (shared("oxides/oxides.db"), {}),
    "aselmdb": lambda: (SAMPLES / "omol_sample.aselmdb", {}),
    "mptrj": lambda: (SAMPLES / "mptrj_sample.json", {}),
    "oc20": lambda: (SAMPLES / "oc20_s2ef_sample.extxyz", {}),
}


def _assert_frames_equal(a: dict, b: dict):
    assert set(a) == set(b)
    for key in a:
        if key == "name":
            assert a[key] == b[key]
        else:
            x, y = np.asarray(a[key]), np.asarray(b[key])
            assert x.dtype == y.dtype or key == K.ATOMIC_NUMBERS, key
            np.testing.assert_array_equal(x, y, err_msg=key)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_round_trip_is_exact(source, tmp_path):
    path, options = SOURCES[source]()
    direct = list(read_frames(path, **options))[:40]  # the first 40 keep the test fast
    out = tmp_path / "data.h5"
    convert([str(path)], str(out), **options)
    ds = HDF5Dataset(out)
    assert len(ds) >= len(direct)
    for i, frame in enumerate(direct):
        cached = ds[i]
        _assert_frames_equal(frame, cached)
        g_direct, g_cached = frame_to_graph(frame, 4.0), frame_to_graph(cached, 4.0)
        for key in (K.POSITIONS, K.CELL, K.ENERGY, K.FORCES, K.STRESS, K.EDGE_INDEX):
            if key in g_direct:
                assert g_direct[key].dtype == g_cached[key].dtype
                assert torch.equal(g_direct[key], g_cached[key]), key


def test_mixed_keys_come_back_per_frame(tmp_path):
    inputs = [str(ACAC / "isolated_atoms.xyz"), str(ACAC / "train_300K.xyz")]
    summary = convert(inputs, str(tmp_path / "m.h5"))
    ds = HDF5Dataset(tmp_path / "m.h5")
    assert len(ds) == 503 and summary["n_atoms"] == 3 + 500 * 15
    assert K.FORCES not in ds[0] and K.FORCES in ds[3]
    assert ds[3]["name"].endswith("train_300K.xyz:0") and ds[-1]["name"].endswith(":499")
    prov = ds.provenance
    assert [s["frames"] for s in prov["sources"]] == [3, 500]
    assert prov["sources"][1]["first_frame"] == 3
    assert {"mlip", "ase", "h5py"} <= set(prov["versions"])


def test_failed_conversion_leaves_nothing(tmp_path):
    text = (ACAC / "train_300K.xyz").read_text()
    (tmp_path / "cut.xyz").write_text(text[: len(text) // 3])
    out = tmp_path / "out.h5"
    with pytest.raises(DataError, match="truncated"):
        convert([str(ACAC / "isolated_atoms.xyz"), str(tmp_path / "cut.xyz")], str(out))
    assert not out.exists() and not (tmp_path / "out.h5.partial").exists()
    # A stale partial file from a killed run is replaced, and the result is complete.
    (tmp_path / "out.h5.partial").write_bytes(b"half")
    convert([str(ACAC / "isolated_atoms.xyz")], str(out))
    assert len(HDF5Dataset(out)) == 3 and not (tmp_path / "out.h5.partial").exists()
    with pytest.raises(FileExistsError):
        convert([str(ACAC / "isolated_atoms.xyz")], str(out))


def test_incomplete_file_is_refused(tmp_path):
    out = tmp_path / "x.h5"
    convert([str(ACAC / "isolated_atoms.xyz")], str(out))
    with h5py.File(out, "a") as f:
        del f.attrs["complete"]
    with pytest.raises(DataError, match="not a complete"):
        HDF5Dataset(out)


def test_the_cache_is_a_reader_like_the_others(tmp_path):
    """read_frames takes a cache by its name like any format, so predict, eval and train read it
    through the one path; frames come back named and equal, and bad files are DataErrors."""
    out = tmp_path / "r.h5"
    convert([str(ACAC / "isolated_atoms.xyz"), str(ACAC / "train_300K.xyz")], str(out))
    cached = list(read_frames(out))
    direct = [*read_frames(ACAC / "isolated_atoms.xyz"), *read_frames(ACAC / "train_300K.xyz")]
    assert len(cached) == len(direct) == 503
    for a, b in zip(cached, direct):
        _assert_frames_equal(a, b)
    # Elements the model does not know are bad records, counted like in any other reader.
    stream = read_frames(out, supported=[1, 6], max_bad_fraction=1.0)
    assert len(list(stream)) == 2 and stream.n_bad == 501  # the isolated H and C atoms
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="text.h5: not an HDF5 file"):
        list(read_frames(tmp_path / "text.h5"))
    with pytest.raises(DataError, match="missing.h5: no such file"):
        read_frames(tmp_path / "missing.h5")


def test_random_access_and_pickling(tmp_path):
    import pickle

    out = tmp_path / "a.h5"
    convert([str(ACAC / "train_300K.xyz")], str(out))
    ds = HDF5Dataset(out)
    direct = list(read_frames(ACAC / "train_300K.xyz"))
    for i in (499, 0, 250, -1):
        _assert_frames_equal(ds[i], direct[i])
    clone = pickle.loads(pickle.dumps(ds))
    _assert_frames_equal(clone[7], direct[7])
    with pytest.raises(IndexError):
        ds[500]


def test_cli_convert_verb(tmp_path, capsys):
    from mlip.cli import convert as verb

    parser = argparse.ArgumentParser()
    verb.add_parser(parser.add_subparsers(dest="verb"))
    out = tmp_path / "c.h5"
    args = parser.parse_args(
        ["convert", str(SAMPLES / "mptrj_sample.json"), "-o", str(out),
         "--energy", "uncorrected_total_energy"]
    )  # fmt: skip
    assert verb.run(args) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 5
    assert HDF5Dataset(out).provenance["reader_options"]["energy"] == "'uncorrected_total_energy'"
