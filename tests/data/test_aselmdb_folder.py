"""An OMol25 split as downloaded, a folder of .aselmdb files, reads as one dataset."""

import shutil

import pytest

from mlip.data.readers import DataError, guess_format, read_frames
from tests.helpers import SAMPLES

SAMPLE = SAMPLES / "omol_sample.aselmdb"


def test_folder_of_aselmdb_files(tmp_path):
    one = list(read_frames(SAMPLE))
    for name in ("data0001.aselmdb", "data0000.aselmdb"):
        shutil.copy(SAMPLE, tmp_path / name)
    assert guess_format(tmp_path) == "aselmdb"
    frames = list(read_frames(tmp_path))
    assert len(frames) == 2 * len(one)
    assert frames[0]["name"].endswith("data0000.aselmdb:1")  # in the order of the names
    assert all("charge" in f and "spin" in f for f in frames)


def test_folder_without_databases_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="without .aselmdb"):
        list(read_frames(tmp_path, format="aselmdb"))
