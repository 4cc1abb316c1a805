"""fp32 training step of the ptb_lstm_small network with the adaptive-softmax NLL written two ways, alternating in
the same process: before issue 11 (boolean row copies of the (N, head) matrix) and now (one gather).

    python benchmarks/softmax_ab.py [--repeats 4]

value = old step time / new step time (> 1: the new NLL is faster); the two NLLs agree (checked first).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from common import record

from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.nn.softmax import AdaptiveSoftmax

NEW_NLL = AdaptiveSoftmax.nll


def old_nll(self: AdaptiveSoftmax, hidden: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The NLL as written before issue 11."""
    head = self._head_log_prob(hidden, weight)
    head_size = self.bounds[1]
    nll = torch.empty(target.shape, dtype=head.dtype, device=target.device)
    in_head = target < head_size
    nll[in_head] = -head[in_head].gather(1, target[in_head].unsqueeze(1)).squeeze(1)
    for i in range(1, len(self.bounds) - 1):
        rows = ((target >= self.bounds[i]) & (target < self.bounds[i + 1])).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        tail = self._tail_log_prob(hidden[rows], weight, i)
        within = tail.gather(1, (target[rows] - self.bounds[i]).unsqueeze(1)).squeeze(1)
        nll[rows] = -(head[rows, head_size + i - 1] + within)
    return nll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = RNNLanguageModel(LMConfig(10002, 400, 400, 2, "lstm", dropout=0.3, dropout_hidden=0.2, dropout_input=0.3,
                                      dropout_embedding=0.05, weight_dropout=0.2, adaptive_cutoffs=(2000, 6000)))
    ranks = torch.arange(1, 10003, dtype=torch.float)
    zipf = (1 / ranks) / (1 / ranks).sum()  # ids sorted by frequency, as the word tokenizer sorts them
    x, y = (torch.multinomial(zipf, 64 * 35, replacement=True).view(64, 35) for _ in range(2))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=True)

    def step() -> None:
        features, _, _ = model(x, None)
        loss = model.nll(features, y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def seconds(nll: Callable) -> float:
        AdaptiveSoftmax.nll = nll
        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        return (time.perf_counter() - start) / args.steps

    hidden, target = torch.randn(500, 400), torch.multinomial(zipf, 500, replacement=True)
    weight = model.output_weight.detach()
    before, after = (nll(model.softmax, hidden, target, weight) for nll in (old_nll, NEW_NLL))
    assert torch.allclose(before, after, atol=1e-5)
    old, new = [], []
    for _ in range(args.repeats):
        old.append(seconds(old_nll))
        new.append(seconds(NEW_NLL))
    AdaptiveSoftmax.nll = NEW_NLL
    record("softmax_ab", metric="old_over_new_step_time", precision="32-true", train_seconds=None,
           value=round(statistics.median(old) / statistics.median(new), 3),
           split="synthetic Zipf ids (batch 64 x bptt 35, vocab 10,002, cutoffs [2000, 6000])",
           old_ms_per_step=[round(1000 * s, 1) for s in old], new_ms_per_step=[round(1000 * s, 1) for s in new])


if __name__ == "__main__":
    main()
