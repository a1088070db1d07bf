"""MPTrj streams: reading a ~1 GB file keeps peak RSS under 500 MB (slow)."""

import json
import subprocess
import sys

import pytest

from tests.helpers import SAMPLES

READ_AND_MEASURE = """
import resource, sys
from mlip.data.readers import read_mptrj
n = 0
for frame in read_mptrj(sys.argv[1]):
    n += 1
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
"""


def _write_big_mptrj(path, target_bytes: int) -> int:
    """Repeat the sample's real frames under new ids until the file reaches ``target_bytes``."""
    doc = json.loads((SAMPLES / "mptrj_sample.json").read_text())
    items = [json.dumps(item) for mp in doc.values() for item in mp.values()]
    n, size = 0, 0
    with open(path, "w") as f:
        f.write("{")
        while size < target_bytes:
            mp_id = f"mp-{n // 20}"
            frames = ", ".join(f'"{mp_id}-{k}": {items[(n + k) % len(items)]}' for k in range(20))
            chunk = f'{"," if n else ""}"{mp_id}": {{{frames}}}'
            f.write(chunk)
            size += len(chunk)
            n += 20
        f.write("}")
    return n


@pytest.mark.slow
def test_reading_1gb_mptrj_stays_under_500mb(tmp_path):
    path = tmp_path / "mptrj_big.json"
    n = _write_big_mptrj(path, 1_000_000_000)
    assert path.stat().st_size > 0.99e9
    out = subprocess.run(
        [sys.executable, "-c", READ_AND_MEASURE, str(path)],
        capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    frames, peak_kib = map(int, out.stdout.split())
    assert frames == n
    assert peak_kib < 500 * 1024, f"peak RSS {peak_kib / 1024:.0f} MB reading a 1 GB file"
