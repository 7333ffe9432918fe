"""Linear layers with few input features, with a faster weight gradient on CPU.

The weight gradient of ``y = x W^T + b`` is ``dW = dy^T x``: for the encoders' narrow
inputs (the 6 edge features of each of ~7,000 messages, the 9 node features) that is a
``(64, M) @ (M, 6)`` product, which MKL's single-threaded CPU kernel computes ~7x slower
than the same numbers as ``(x^T dy)^T``, a ``(6, M) @ (M, 64)`` product (measured on the
PPO minibatches: ~0.9 ms against ~0.12 ms per layer). `narrow_input_linear` is
``F.linear`` with that backward; `use_narrow_input_backward` switches an existing layer
to it in place (same parameters, same ``state_dict``). The gradient is the same sum in
another order: equal up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.dense.linear import Linear as PygLinear


class _NarrowInputLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (x.reshape(-1, x.shape[-1]).t() @ grad2).t().contiguous()
        grad_b = grad2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def narrow_input_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` whose weight gradient is computed as ``(x^T dy)^T``.

    Shapes: x ``(..., in)``, weight ``(out, in)``, bias ``(out,)`` -> ``(..., out)``.
    """
    if not torch.is_grad_enabled():
        return F.linear(x, weight, bias)
    return _NarrowInputLinear.apply(x, weight, bias)


class NarrowLinear(nn.Linear):
    """``nn.Linear`` with `narrow_input_linear`'s backward."""

    def forward(self, x: Tensor) -> Tensor:
        return narrow_input_linear(x, self.weight, self.bias)


class NarrowPygLinear(PygLinear):
    """PyG's ``Linear`` (``TransformerConv.lin_edge``) with `narrow_input_linear`'s backward."""

    def forward(self, x: Tensor) -> Tensor:
        return narrow_input_linear(x, self.weight, self.bias)


def use_narrow_input_backward(layer: nn.Module) -> None:
    """Switch a ``nn.Linear`` or PyG ``Linear`` to the faster weight gradient, in place."""
    if type(layer) is nn.Linear:
        layer.__class__ = NarrowLinear
    elif type(layer) is PygLinear:
        layer.__class__ = NarrowPygLinear
    elif not isinstance(layer, NarrowLinear | NarrowPygLinear):
        raise TypeError(f"expected nn.Linear or torch_geometric Linear, got {type(layer)}")
