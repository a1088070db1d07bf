"""The wheel contains every subpackage, with kernels/ installed as mlip.kernels, and the shipped
models with their cards."""

import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO


def _source_packages():
    found = set()
    for top, prefix in (("mlip", "mlip"), ("kernels", "mlip/kernels")):
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top).as_posix()
            found.add(prefix if rel == "." else f"{prefix}/{rel}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
           str(out), str(REPO)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (path,) = out.glob("mlip_potentials-*.whl")  # the distribution name; the import is mlip
    return path


def test_wheel_contains_every_subpackage(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    missing = _source_packages() - packages
    assert not missing, f"subpackages missing from the wheel: {sorted(missing)}"
    assert "mlip/kernels/__init__.py" in names
    assert not any(n.startswith(("kernels/", "tests/", "datasets/")) for n in names)


def test_wheel_ships_the_pretrained_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.name for p in (REPO / "mlip" / "pretrained").glob("*.pt"))
    for name in shipped:
        card = name[:-3] + ".yaml"
        assert f"mlip/pretrained/{name}" in names and f"mlip/pretrained/{card}" in names


def test_kernels_refuse_another_name():
    proc = subprocess.run(
        [sys.executable, "-c", "import kernels"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode != 0 and "mlip.kernels" in proc.stderr
