import pytest

from tests.helpers import write_acac


@pytest.fixture(scope="module")
def acac(tmp_path_factory):
    """24 acac frames as extxyz (a module may override it with its own size)."""
    return write_acac(tmp_path_factory.mktemp("acac") / "train.xyz", 24)
