"""Two CPU processes under torchrun (DDP, gloo) give the weights of one process with the same
global batch."""

import os
import socket
import subprocess
import sys

import numpy as np
import torch
import yaml

from mlip.train import train
from mlip.train.distributed import BalancedBatchSampler
from tests.helpers import tiny_config, write_acac


def test_balanced_sampler_splits_global_batches_by_atoms():
    atoms = np.array([10, 50, 20, 30, 40, 5, 15, 25])
    parts = [BalancedBatchSampler(atoms, 100, rank=r, world=2, seed=3) for r in range(2)]
    single = BalancedBatchSampler(atoms, 200, seed=3)
    for s in parts + [single]:
        s.set_epoch(1)
    for b0, b1, whole in zip(parts[0].batches(), parts[1].batches(), single.batches()):
        assert sorted(b0 + b1) == sorted(whole)
        assert abs(atoms[b0].sum() - atoms[b1].sum()) <= atoms[whole].max()
    parts[0].set_epoch(1, start=1)
    assert list(parts[0]) == parts[0].batches()[1:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    data = write_acac(tmp_path / "train.xyz", 16)
    # A moderate learning rate: at the tiny configs' 0.05 the loss is rough enough that the
    # all-reduce's summation order (1e-16) grows to 1e-9 in two epochs.
    optim = {"lr": 0.01, "ema_decay": 0.5, "warmup_steps": 2}
    per_rank = {"data": {"max_atoms": 30, "valid_fraction": 0.25}, "run": {"epochs": 2},
                "optim": optim}
    config = tiny_config(data, tmp_path / "ddp", **per_rank)
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(_free_port()), "-m", "mlip", "train", str(tmp_path / "ddp.yaml")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    # one process, twice the per-process batch: the same global batches
    one = tiny_config(data, tmp_path / "one", data={"max_atoms": 60, "valid_fraction": 0.25},
                      run={"epochs": 2}, optim=optim)
    result = train(one)
    a = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    assert a["train_state"]["global_step"] == b["train_state"]["global_step"] == result.steps
    for key, value in b["train_state"]["raw_weights"].items():
        torch.testing.assert_close(a["train_state"]["raw_weights"][key], value,
                                   rtol=1e-9, atol=1e-10)
