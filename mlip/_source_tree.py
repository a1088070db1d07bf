"""Make ``mlip.kernels`` importable from a source checkout.

The wheel maps the top-level ``kernels/`` folder to ``mlip.kernels``. When the checkout's
``mlip/`` shadows the installed package (``python -m mlip`` from the repo root), that mapping
is not seen, so the sibling folder is registered here under its installed name.
"""

import importlib.util
import sys
from pathlib import Path


def register_kernels() -> None:
    if "mlip.kernels" in sys.modules:
        return
    root = Path(__file__).resolve().parent.parent
    init = root / "kernels" / "__init__.py"
    if not (init.is_file() and (root / "pyproject.toml").is_file()):
        return
    if importlib.util.find_spec("mlip.kernels") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "mlip.kernels", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["mlip.kernels"] = module
    spec.loader.exec_module(module)
    sys.modules["mlip"].kernels = module
