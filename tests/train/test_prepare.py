"""Reading the training files: a glob pattern reads every file it matches (VASP runs)."""

from pathlib import Path

import pytest

from mlip.data.readers import DataError
from mlip.train.config import DataConfig
from mlip.train.prepare import read_dataset

HFO2 = Path(__file__).resolve().parents[3] / "shared/data/hfo2/outcars"


@pytest.mark.skipif(not HFO2.is_dir(), reason="needs ../shared/data/hfo2")
def test_a_pattern_reads_every_outcar_in_order():
    frames = read_dataset(str(HFO2 / "*/OUTCAR_*"), DataConfig())
    names = [f["name"] for f in frames]
    assert len(frames) == 10 and names == sorted(names)
    assert all("stress" in f for f in frames)
    one = read_dataset(str(HFO2 / "label_1/OUTCAR_1"), DataConfig())
    assert one[0]["name"] == names[0] and len(one[0]["positions"]) == 96


def test_a_pattern_that_matches_nothing_is_named(tmp_path):
    with pytest.raises(DataError, match=r"OUTCAR\*: the pattern matches no file"):
        read_dataset(str(tmp_path / "OUTCAR*"), DataConfig())
    with pytest.raises(DataError, match="no such file"):
        read_dataset(str(tmp_path / "train.xyz"), DataConfig())
