"""torch-sim (batched MD and relaxation of many systems at once) driven by an mlip model.

    import torch, torch_sim as ts
    from mlip.integrations.torchsim import MLIPModel

    model = MLIPModel("tial-facet-s")                    # a checkpoint path, a name, a Potential
    relaxed = ts.optimize(system=[atoms1, atoms2], model=model, optimizer=ts.frechet_cell_fire)

torch-sim keeps every system of a run in one state. Each call builds every system's graph the
way the ASE calculator does (the same neighbour list, structure checks and element check),
batches them and runs the model once: energy ``(n_systems,)`` in eV, forces ``(n_atoms, 3)``
in eV/Å and stress ``(n_systems, 3, 3)`` in eV/Å³ with ASE's sign, as torch-sim's
``ModelInterface`` documents. The neighbour list runs on the CPU (vesin), so on a GPU each call
copies positions to the host and the graph back.

Charge and spin: torch-sim 0.3's state has no slot for them, so a charge/spin model takes them
here (one value, or one per system) or from ``state.charge`` / ``state.spin`` where a torch-sim
version provides them; without either the model's policy for missing values applies
(docs/architecture.md, "Charge and spin").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

try:
    import torch_sim as ts
    from torch_sim.models.interface import ModelInterface
except ImportError as err:  # pragma: no cover - only without the optional dependency
    raise ImportError(
        "mlip.integrations.torchsim needs torch-sim: pip install torch-sim-atomistic"
    ) from err

from ..calculator import _load
from ..data import keys as K
from ..data.graph import frame_to_graph
from ..inference import model_batch
from ..models.base import resolve_dtype


def _per_system(value, n: int, what: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    out = np.asarray(value, dtype=np.float64).reshape(-1)
    if out.size == 1:
        out = np.full(n, out[0])
    if out.shape != (n,):
        raise ValueError(f"{what}: {out.size} values for {n} systems; give one, or one per system")
    return out


class MLIPModel(ModelInterface):
    """An mlip :class:`~mlip.models.base.Potential` as a torch-sim model.

    ``model``: a checkpoint path, a shipped model's name or a ``Potential``. ``dtype`` is the
    dtype the model runs in and the states must have (default float64, torch-sim's; a
    ``Potential`` object keeps its own unless it matches). ``compute_stress`` needs systems
    periodic in all three directions; set it False for molecules and slabs. ``charge`` and
    ``spin`` (total charge in e, multiplicity 2S+1): one value or one per system.
    """

    def __init__(
        self,
        model,
        *,
        device: str | torch.device | None = None,
        dtype=torch.float64,
        compute_forces: bool = True,
        compute_stress: bool = True,
        neighbors: str = "vesin",
        charge: float | Sequence[float] | None = None,
        spin: float | Sequence[float] | None = None,
    ):
        super().__init__()
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = _load(model, self._device, dtype)
        self._dtype = resolve_dtype(dtype) if dtype is not None else self.model.dtype
        self._compute_forces, self._compute_stress = bool(compute_forces), bool(compute_stress)
        self._memory_scales_with = "n_atoms_x_density"  # a radial cutoff
        self.neighbors, self.charge, self.spin = neighbors, charge, spin
        self.supported = self.model.elements.tolist()
        if not self.model.conservative:
            if self._compute_stress:
                raise ValueError("this model predicts forces directly and has no stress "
                                 "(no energy to strain); build it with compute_stress=False")
            warnings.warn("this model predicts forces directly (non-conservative): energy is "
                          "not conserved in MD", stacklevel=2)

    def forward(self, state, **kwargs) -> dict[str, torch.Tensor]:
        if isinstance(state, dict):
            state = ts.SimState(**state, masses=torch.ones_like(state["positions"]))
        n = state.n_systems
        index = state.system_idx.detach().cpu().numpy()
        if np.any(np.diff(index) < 0):
            raise ValueError("torch-sim state: the atoms of each system must be contiguous and "
                             "the systems in order (system_idx sorted)")
        pbc = np.broadcast_to(np.asarray(torch.as_tensor(state.pbc).cpu(), dtype=bool), (3,))
        if self._compute_stress and not pbc.all():
            raise ValueError(
                f"torch-sim state with pbc {pbc.tolist()}: a stress needs systems periodic in "
                "all three directions; build MLIPModel(..., compute_stress=False) for "
                "molecules and slabs")
        charge = _per_system(getattr(state, "charge", None) if self.charge is None
                             else self.charge, n, "charge")
        spin = _per_system(getattr(state, "spin", None) if self.spin is None else self.spin,
                           n, "spin")
        positions = state.positions.detach().cpu().double().numpy()
        numbers = state.atomic_numbers.detach().cpu().numpy()
        cells = state.row_vector_cell.detach().cpu().double().numpy()
        starts = np.searchsorted(index, np.arange(n + 1))
        graphs = []
        for b in range(n):
            atoms = slice(starts[b], starts[b + 1])
            frame = {K.POSITIONS: positions[atoms], K.ATOMIC_NUMBERS: numbers[atoms],
                     K.CELL: cells[b], K.PBC: pbc, "name": f"torch-sim system {b}"}
            if charge is not None:
                frame[K.CHARGE] = charge[b]
            if spin is not None:
                frame[K.SPIN] = spin[b]
            graphs.append(frame_to_graph(frame, self.model.cutoff, self.neighbors,
                                         supported=self.supported))
        batch = model_batch(self.model, graphs, self._device)
        with torch.enable_grad():  # forces and stress are gradients, whatever the caller's mode
            out = self.model(batch, compute_forces=self._compute_forces,
                             compute_stress=self._compute_stress)
        result = {"energy": out[K.ENERGY].detach().to(self._dtype)}
        if self._compute_forces:
            result["forces"] = out[K.FORCES].detach().to(self._dtype)
        if self._compute_stress:
            result["stress"] = out[K.STRESS].detach().to(self._dtype)
        return result
