import math

import pytest
import torch

from mlip.data import keys as K
from mlip.data.loader import collate_targets
from mlip.metrics import Metrics
from mlip.train.config import LossConfig
from mlip.train.ema import EMA
from mlip.train.losses import WeightedLoss


def _graph(n_atoms=(2, 3), stress=True, pbc=(True, False)):
    graphs = []
    for n, periodic in zip(n_atoms, pbc):
        g = {
            K.POSITIONS: torch.zeros(n, 3, dtype=torch.float64),
            K.ATOMIC_NUMBERS: torch.tensor([1] * (n - 1) + [8]),
            K.CELL: torch.eye(3, dtype=torch.float64)[None] * 5,
            K.PBC: torch.tensor([[periodic] * 3]),
            K.EDGE_INDEX: torch.zeros(2, 0, dtype=torch.long),
            K.EDGE_SHIFT: torch.zeros(0, 3, dtype=torch.float64),
            K.BATCH: torch.zeros(n, dtype=torch.long),
            K.NUM_ATOMS: torch.tensor([n]),
            K.ENERGY: torch.tensor([1.0], dtype=torch.float64),
            K.FORCES: torch.zeros(n, 3, dtype=torch.float64),
        }
        if stress and periodic:
            g[K.STRESS] = torch.zeros(1, 3, 3, dtype=torch.float64)
        graphs.append(g)
    return collate_targets(graphs)


def _pred(graph, de=(0.4, 0.9), df=0.1, ds=0.01):
    return {
        K.ENERGY: graph[K.ENERGY] + torch.tensor(de, dtype=torch.float64),
        K.FORCES: graph[K.FORCES] + df,
        K.STRESS: torch.zeros(2, 3, 3, dtype=torch.float64) + ds,
    }


def test_mse_per_atom_energy_forces_and_periodic_stress_only():
    graph = _graph()
    assert torch.isnan(graph[K.STRESS][1]).all()  # the molecule has no stress target
    loss = WeightedLoss(LossConfig(energy_weight=2.0, forces_weight=3.0, stress_weight=5.0))
    terms = loss.terms(_pred(graph), graph)
    energy = ((0.4 / 2) ** 2 + (0.9 / 3) ** 2) / 2
    assert terms["stress"][1] == 9  # one periodic structure
    total = loss.combine(terms)
    assert float(total) == pytest.approx(2 * energy + 3 * 0.01 + 5 * 1e-4)


def test_huber_and_element_weights():
    graph = _graph(stress=False)
    pred = _pred(graph, df=0.5)
    huber = WeightedLoss(LossConfig(kind="huber", huber_delta=0.1, energy_weight=0.0))
    s, c = huber.terms(pred, graph)["forces"]
    assert float(s / c) == pytest.approx(0.1 * (0.5 - 0.05))
    weighted = WeightedLoss(LossConfig(energy_weight=0.0, element_weights={"O": 3.0}))
    s, c = weighted.terms(pred, graph)["forces"]
    assert float(c) == 3 * (3 + 2 * 3.0)  # H x3 weight 1, O x2 weight 3
    assert float(s / c) == pytest.approx(0.25)


def test_global_counts_split_the_loss_like_one_batch():
    graph = _graph(stress=False)
    loss = WeightedLoss(LossConfig())
    whole = loss.combine(loss.terms(_pred(graph), graph))
    halves = []
    for b in range(2):  # two "processes", each with one structure, global counts, world 2
        sub = {k: v for k, v in graph.items()}
        mask = graph[K.BATCH] == b
        part = {K.ENERGY: graph[K.ENERGY][b:b + 1], K.FORCES: graph[K.FORCES][mask],
                K.NUM_ATOMS: graph[K.NUM_ATOMS][b:b + 1],
                K.ATOMIC_NUMBERS: graph[K.ATOMIC_NUMBERS][mask], K.PBC: sub[K.PBC][b:b + 1]}
        pred = _pred(graph)
        p = {K.ENERGY: pred[K.ENERGY][b:b + 1], K.FORCES: pred[K.FORCES][mask]}
        halves.append(loss.terms(p, part))
    counts = {t: sum(float(h[t][1]) for h in halves) for t in halves[0]}
    mean = sum(loss.combine(h, counts, world=2) for h in halves) / 2
    assert float(mean) == pytest.approx(float(whole), rel=1e-12)


def test_metrics_mae_rmse_and_per_element():
    graph = _graph(stress=False)
    m = Metrics(per_element=True)
    m.update(_pred(graph, df=0.2), graph)
    out = m.compute()
    assert out["forces_mae"] == pytest.approx(0.2) and out["forces_rmse"] == pytest.approx(0.2)
    assert out["energy_rmse"] == pytest.approx(math.sqrt(((0.2) ** 2 + 0.3**2) / 2))
    assert out["per_element"]["H"]["n_atoms"] == 3 and out["per_element"]["O"]["n_atoms"] == 2


def test_ema_tracks_weights_and_round_trips():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    d = min(0.5, 2 / 11)
    assert torch.allclose(ema.module.weight, d * start + (1 - d) * model.weight)
    other = EMA(model, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight) and other.num_updates == 1
