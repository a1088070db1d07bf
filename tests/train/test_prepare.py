"""Reading the training files: a glob pattern reads every file it matches (VASP runs)."""

import pytest

from mlip.data.readers import DataError
from mlip.train.config import DataConfig
from mlip.train.prepare import read_dataset
from tests.helpers import shared


def test_a_pattern_reads_every_outcar_in_order():
    hfo2 = shared("hfo2/outcars")
    frames = read_dataset(str(hfo2 / "*/OUTCAR_*"), DataConfig())
    names = [f["name"] for f in frames]
    assert len(frames) == 10 and names == sorted(names)
    assert all("stress" in f for f in frames)
    one = read_dataset(str(hfo2 / "label_1/OUTCAR_1"), DataConfig())
    assert one[0]["name"] == names[0] and len(one[0]["positions"]) == 96


def test_a_pattern_that_matches_nothing_is_named(tmp_path):
    with pytest.raises(DataError, match=r"OUTCAR\*: the pattern matches no file"):
        read_dataset(str(tmp_path / "OUTCAR*"), DataConfig())
    with pytest.raises(DataError, match="no such file"):
        read_dataset(str(tmp_path / "train.xyz"), DataConfig())
