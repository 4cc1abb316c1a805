"""Label-smoothed cross-entropy as one autograd function: fewer passes over the (tokens, vocab) scores.

The stock composition (log_softmax, gather, mean) builds three gradients of size (tokens, vocab) and adds
them; here the gradient `(softmax − q) · g`, with q the smoothed target distribution, is written once.
This matters on CPUs, where the output layer's elementwise passes cost about as much as its matmuls.
"""

from __future__ import annotations

import torch

__all__ = ["label_smoothed_nll", "regression_loss"]


class _LabelSmoothedNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, logits: torch.Tensor, target: torch.Tensor,
                smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (N, V) float32
        nll = -log_probs.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
        loss = (1 - smoothing) * nll - smoothing * log_probs.mean(dim=-1) if smoothing > 0 else nll.clone()
        ctx.save_for_backward(log_probs, target)
        ctx.smoothing, ctx.dtype = smoothing, logits.dtype
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor,
                 grad_nll: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        log_probs, target = ctx.saved_tensors
        grad = log_probs.exp()  # softmax, (N, V)
        if ctx.smoothing > 0:
            grad.sub_(ctx.smoothing / grad.size(1))
        grad.scatter_add_(1, target.unsqueeze(1), grad.new_full((grad.size(0), 1), ctx.smoothing - 1.0))
        grad.mul_(grad_loss.unsqueeze(1))
        return grad.to(ctx.dtype), None, None


def label_smoothed_nll(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token loss = (1 − ε) · NLL + ε · mean over the vocabulary of −log p (as `F.cross_entropy(
    label_smoothing=ε)`) and plain NLL: logits (N, vocab_size) of any float dtype, target (N,) ids, ε in [0, 1) →
    loss (N,) (differentiable) and NLL (N,) (not differentiable), both float32 nats."""
    return _LabelSmoothedNLL.apply(logits, target, smoothing)


def regression_loss(predicted: torch.Tensor, target: torch.Tensor, loss: str, quantiles: tuple[float, ...] = (),
                    huber_delta: float = 1.0) -> torch.Tensor:
    """Elementwise loss of a regressor's outputs: predicted (..., Q) (one point, Q = 1, or one output per quantile
    of `quantiles`), target (...) → (...) float32. `loss`: `mse`, `mae`, `huber` (on the point) or `quantile`
    (pinball loss, averaged over the quantiles)."""
    predicted, target = predicted.float(), target.float()
    if loss == "quantile":
        q = torch.tensor(quantiles, device=predicted.device)  # (Q,)
        error = target.unsqueeze(-1) - predicted  # (..., Q)
        return torch.maximum(q * error, (q - 1) * error).mean(-1)
    point = predicted[..., 0]
    if loss == "mse":
        return (point - target).square()
    if loss == "mae":
        return (point - target).abs()
    if loss == "huber":
        return torch.nn.functional.huber_loss(point, target, reduction="none", delta=huber_delta)
    raise ValueError(f"unknown loss {loss!r}; use mse, mae, huber or quantile")
