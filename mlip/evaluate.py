"""Errors of a model on labelled structures, overall and per element, and parity plots."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .data import keys as K
from .data.graph import to
from .data.loader import GraphDataset, SizeBatchSampler, collate_targets
from .metrics import Metrics, errors

log = logging.getLogger("mlip.evaluate")


def evaluate(model, frames, max_atoms: int = 512, device=None, neighbors: str = "vesin",
             per_element: bool = True, predictions: dict | None = None) -> dict:
    """MAE and RMSE (eV units) of energy per atom, forces and stress over ``frames`` (a
    sequence of frames or an HDF5 cache path), with force errors per element.

    Pass a dict as ``predictions`` to receive reference and predicted values for plots
    (``energy``: per atom, ``forces``: components, ``stress``: components, each ``(n, 2)``)."""
    device = torch.device(device) if device is not None else next(model.buffers()).device
    model = model.to(device).eval()
    dataset = GraphDataset(frames, model.cutoff, neighbors, supported=model.elements.tolist())
    sampler = SizeBatchSampler(dataset.num_atoms, max_atoms, shuffle=False)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                         collate_fn=collate_targets)
    metrics = Metrics(per_element=per_element)
    pairs: dict[str, list] = {"energy": [], "forces": [], "stress": []}
    n_structures = n_atoms = 0
    for batch in loader:
        graph = to(batch, device)
        stress = K.STRESS in graph and bool(graph[K.PBC].all(dim=1).any())
        pred = {k: v.detach() for k, v in model(graph, compute_stress=stress).items()}
        metrics.update(pred, graph)
        n_structures += len(graph[K.NUM_ATOMS])
        n_atoms += len(graph[K.POSITIONS])
        if predictions is not None:
            for term, err in errors(pred, graph).items():
                if term in pairs:
                    pairs[term].append(_pairs(term, err, pred, graph))
    out = {"n_structures": n_structures, "n_atoms": n_atoms, **metrics.compute()}
    if predictions is not None:
        for term, chunks in pairs.items():
            if chunks:
                predictions[term] = np.concatenate(chunks)
    return out


def _pairs(term, err, pred, graph) -> np.ndarray:
    """(reference, prediction) rows of the items that have a reference."""
    if term == "energy":
        ref = graph[K.ENERGY].double() / graph[K.NUM_ATOMS].double()
        ref = ref[torch.isfinite(ref)]
    elif term == "forces":
        ref = graph[K.FORCES].double()
        ref = ref[torch.isfinite(ref).all(dim=1)]
    else:
        ref = graph[K.STRESS].double()
        ok = torch.isfinite(ref).flatten(1).all(dim=1) & graph[K.PBC].all(dim=1)
        ref = ref[ok]
    ref = ref.reshape(-1).cpu().numpy()
    return np.stack([ref, ref + err.reshape(-1).cpu().numpy()], axis=1)


_LABELS = {"energy": "energy (eV/atom)", "forces": "force component (eV/Å)",
           "stress": "stress component (eV/Å³)"}


def parity_plots(predictions: dict, out_dir, metrics: dict | None = None) -> list[Path]:
    """One PNG per quantity: prediction against reference, with MAE and RMSE in meV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for term, values in predictions.items():
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(values[:, 0], values[:, 1], s=3, alpha=0.5)
        lo, hi = float(values.min()), float(values.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"reference {_LABELS[term]}")
        ax.set_ylabel(f"predicted {_LABELS[term]}")
        if metrics and f"{term}_mae" in metrics:
            ax.set_title(f"MAE {1000 * metrics[f'{term}_mae']:.2f}, "
                         f"RMSE {1000 * metrics[f'{term}_rmse']:.2f} (meV units)")
        fig.tight_layout()
        path = out_dir / f"parity_{term}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
