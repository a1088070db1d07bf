"""Backend dispatch: auto, the MLIP_KERNELS override, clear errors, triton optional."""

import subprocess
import sys
import warnings

import pytest
import torch
from mlip.kernels import _dispatch
from mlip.kernels.bspline import bspline_radial
from mlip.kernels.gaunt_conv import gaunt_grid_conv, reference

from tests.helpers.kernels import needs_interpreter

CPU = torch.device("cpu")


def small():
    x = torch.randn(3, 4, 2)
    d = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    grid = torch.nn.functional.normalize(torch.randn(4, 3), dim=-1)
    return x, d, torch.randn(5, 2, 2), grid, torch.randint(0, 3, (5,)), torch.randint(0, 3, (5,))


def test_auto_on_cpu_uses_torch_silently(monkeypatch):
    monkeypatch.delenv("MLIP_KERNELS", raising=False)
    monkeypatch.setattr(_dispatch, "_announced", set())
    args = small()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DESIGN §5: on a CPU the reference is no news
        out = gaunt_grid_conv(*args)
    assert torch.equal(out, reference.gaunt_grid_conv(*args))
    assert _dispatch.select_backend("op", "auto", CPU) == "torch"


def test_asking_for_triton_where_it_cannot_run_warns_once(monkeypatch):
    monkeypatch.setenv("MLIP_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(_dispatch, "_announced", set())
    args = small()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = gaunt_grid_conv(*args)
        gaunt_grid_conv(*args)
    msgs = [str(w.message) for w in caught if "gaunt_grid_conv" in str(w.message)]
    assert len(msgs) == 1 and "torch reference" in msgs[0]
    assert torch.equal(out, reference.gaunt_grid_conv(*args))


def test_auto_on_cuda_without_triton_warns(monkeypatch):
    monkeypatch.delenv("MLIP_KERNELS", raising=False)
    monkeypatch.setattr(_dispatch, "_announced", set())
    monkeypatch.setattr(_dispatch, "HAS_TRITON", False)
    with pytest.warns(UserWarning, match="triton is not installed"):
        assert _dispatch.select_backend("op", "auto", torch.device("cuda")) == "torch"


def test_env_forces_torch(monkeypatch):
    monkeypatch.setenv("MLIP_KERNELS", "torch")
    for backend in ("auto", "triton", "compile"):
        assert _dispatch.select_backend("op", backend, CPU) == "torch"
    assert _dispatch.select_backend("op", "auto", torch.device("cuda")) == "torch"
    monkeypatch.setenv("MLIP_KERNELS", "fast")
    with pytest.raises(ValueError, match="MLIP_KERNELS"):
        _dispatch.select_backend("op", "auto", CPU)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        bspline_radial(torch.rand(3), torch.randn(4, 2), 5.0, backend="cuda")


def test_triton_on_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.delenv("MLIP_KERNELS", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    match = "TRITON_INTERPRET=1" if _dispatch.HAS_TRITON else "not installed"
    with pytest.raises(RuntimeError, match=match):
        gaunt_grid_conv(*small(), backend="triton")


@needs_interpreter
def test_triton_on_cpu_under_interpreter_runs(monkeypatch):
    monkeypatch.delenv("MLIP_KERNELS", raising=False)
    args = small()
    torch.testing.assert_close(
        gaunt_grid_conv(*args, backend="triton"), reference.gaunt_grid_conv(*args)
    )


def test_everything_imports_without_triton():
    code = (
        "import sys, warnings; sys.modules['triton'] = None\n"
        "import torch, mlip.kernels._dispatch as d\n"
        "from mlip.kernels.gaunt_conv import gaunt_grid_conv\n"
        "from mlip.kernels.bspline import bspline_radial\n"
        "from mlip.kernels.cg_conv import cg_conv\n"
        "from mlip.kernels.grid_mixing import grid_mlp\n"
        "assert not d.HAS_TRITON\n"
        "assert d.select_backend('op', 'auto', torch.device('cuda')) == 'torch'\n"
        "warnings.simplefilter('ignore')\n"
        "print(bspline_radial(torch.rand(4), torch.randn(3, 2), 5.0).shape)\n"
        "try:\n    bspline_radial(torch.rand(4), torch.randn(3, 2), 5.0, backend='triton')\n"
        "except RuntimeError as e:\n    print('refused:', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch.Size([4, 2])" in proc.stdout and "not installed" in proc.stdout
