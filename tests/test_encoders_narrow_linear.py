"""Narrow-input linear layers: same outputs, gradients and state_dict as the layers they replace."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch_geometric.nn.dense.linear import Linear as PygLinear

from gnnrl.encoders.narrow_linear import use_narrow_input_backward


@pytest.mark.parametrize("make", [lambda: nn.Linear(6, 64), lambda: PygLinear(6, 64, bias=False),
                                  lambda: nn.Linear(9, 64)])
def test_narrow_layer_gives_the_same_values_gradients_and_state_dict(make):
    torch.manual_seed(0)
    plain = make()
    narrow = copy.deepcopy(plain)
    use_narrow_input_backward(narrow)
    assert type(narrow) is not type(plain)
    assert narrow.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(500, 3, plain.in_channels if hasattr(plain, "in_channels")
                    else plain.in_features, requires_grad=True)
    grad = torch.randn(500, 3, 64)
    outs = []
    for layer in (plain, narrow):
        x.grad = None
        y = layer(x)
        y.backward(grad)
        outs.append((y.detach(), x.grad.clone(), {k: p.grad for k, p in
                                                  layer.named_parameters()}))
    (y0, gx0, gp0), (y1, gx1, gp1) = outs
    assert torch.equal(y0, y1)
    torch.testing.assert_close(gx1, gx0)
    for key in gp0:  # sums of 1,500 products in another order: float32 rounding
        scale = float(gp0[key].abs().max())
        torch.testing.assert_close(gp1[key], gp0[key], rtol=1e-4, atol=1e-5 * scale)


def test_only_linear_layers_can_be_switched():
    with pytest.raises(TypeError, match=r"expected nn\.Linear"):
        use_narrow_input_backward(nn.Tanh())
