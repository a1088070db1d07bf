"""mlip predict skips and reports bad structures and writes the rest (issue #26)."""

import numpy as np
from ase.build import molecule
from ase.io import read, write

import mlip
from mlip.predict import predict_files


def test_one_bad_frame_of_six(tmp_path):
    frames = []
    for i in range(6):
        a = molecule("H2O")
        a.rattle(0.01, seed=i)
        if i == 3:
            a.positions[1] = np.nan
        frames.append(a)
    write(tmp_path / "six.xyz", frames)
    model = mlip.build_model("nequip-like", elements=["H", "O"], channels=4, num_layers=1)
    out = tmp_path / "out.xyz"
    summary = predict_files(model, [tmp_path / "six.xyz"], out)
    assert summary["structures"] == 5 and summary["bad_records"] == 1
    assert summary["failed"] == [
        f"{tmp_path / 'six.xyz'}:3: key 'positions': contains NaN or infinite values"]
    written = read(out, ":")
    assert [a.info["name"] for a in written] == [f"{tmp_path / 'six.xyz'}:{i}"
                                                 for i in (0, 1, 2, 4, 5)]
