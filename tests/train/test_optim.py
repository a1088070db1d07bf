import math

import pytest
import torch

from mlip.nn.mixing import EquivariantLinear
from mlip.train.config import OptimConfig
from mlip.train.optim import Schedule, build_optimizer, lr_scales


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(5, 4))  # unit-scale, like a spline table
        self.linear = torch.nn.Linear(64, 3)
        self.equi = EquivariantLinear(1, (16, 4), (2, 2))

    def loss(self):
        x = torch.ones(1, 4, 64)
        return (self.linear(x).sum() + self.equi(x[..., :16]).sum() + self.table.sum()) ** 2


def one_adam_step(config):
    torch.manual_seed(0)
    net = Net()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = build_optimizer(net, config)
    Schedule(opt, config, total_steps=10)
    net.loss().backward()
    opt.step()
    return {n: (p.detach() - before[n]).abs() for n, p in net.named_parameters()}


def test_fan_in_scaling_moves_every_weight_by_the_same_fraction_of_its_scale():
    lr = 0.01
    moved = one_adam_step(OptimConfig(lr=lr, lr_scaling="fan_in", schedule="constant"))
    # Adam's first step is lr * sign(grad) in every entry with a gradient.
    torch.testing.assert_close(moved["linear.weight"], torch.full((3, 64), lr / 8))
    torch.testing.assert_close(moved["equi.weights.0"], torch.full((16, 2), lr / 4))
    torch.testing.assert_close(moved["equi.weights.1"], torch.full((4, 2), lr / 2))
    torch.testing.assert_close(moved["table"], torch.full((5, 4), lr))
    torch.testing.assert_close(moved["linear.bias"], torch.full((3,), lr))
    plain = one_adam_step(OptimConfig(lr=lr, schedule="constant"))
    for name, step in plain.items():
        torch.testing.assert_close(step, torch.full_like(step, lr), msg=name)


def test_schedule_multiplies_each_groups_scale_into_the_warmup_and_cosine():
    net = Net()
    config = OptimConfig(lr=0.1, lr_scaling="fan_in", warmup_steps=4, min_lr_ratio=0.1)
    opt = build_optimizer(net, config)
    sched = Schedule(opt, config, total_steps=14)
    scales = lr_scales(net, "fan_in")
    assert scales[id(net.linear.weight)] == pytest.approx(1 / 8)
    expected = [0.1 * (s + 1) / 4 for s in range(4)]
    expected += [0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / 10))) for t in range(11)]
    for step, lr in enumerate(expected):
        assert sched.lr() == pytest.approx(lr), step
        for group in opt.param_groups:
            assert group["lr"] == pytest.approx(lr * group["lr_scale"])
        sched.step()
    assert sched.lr() == pytest.approx(0.01)  # the floor


def test_weight_decay_only_on_matrices_and_unknown_scaling_refused():
    net = Net()
    opt = build_optimizer(net, OptimConfig(weight_decay=0.1))
    for group in opt.param_groups:
        assert all((p.ndim >= 2) == (group["weight_decay"] > 0) for p in group["params"])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(net.parameters()))
    with pytest.raises(ValueError, match="lr_scaling"):
        lr_scales(net, "muP")


def test_plateau_halves_after_patience_and_state_round_trips():
    net = Net()
    config = OptimConfig(lr=1.0, schedule="plateau", plateau_patience=1, plateau_factor=0.5)
    opt = build_optimizer(net, config)
    sched = Schedule(opt, config, total_steps=100)
    for loss in (1.0, 2.0, 2.0):
        sched.epoch_end(loss)
    assert sched.lr() == pytest.approx(0.5)
    again = Schedule(build_optimizer(net, config), config, total_steps=1)
    again.load_state_dict(sched.state_dict())
    assert again.lr() == sched.lr() and again.state_dict() == sched.state_dict()
