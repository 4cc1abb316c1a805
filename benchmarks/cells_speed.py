"""Training speed (forward + backward, float32) of the LSTM variants through `RNNStack`, against stock `nn.LSTM`:
a PTB-like shape (batch 64 x bptt 35, embedding input, 2 layers), the three alternating for a few rounds in the
same process so that they see the same machine.

    python benchmarks/cells_speed.py [--hidden 400] [--rounds 5] [--steps 5] [--threads N]

value = the smaller of tokens/s(variant) / tokens/s(nn.LSTM) over lstm_peephole and lstm_layernorm (target ≥ 0.5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import record
from torch import nn

from seq2text.nn.rnn import RNNStack

TYPES = ("lstm", "lstm_peephole", "lstm_layernorm")
BATCH, BPTT, VOCAB = 64, 35, 10000


def _model(rnn_type: str, emb_size: int, hidden: int, layers: int) -> nn.ModuleDict:
    torch.manual_seed(0)
    return nn.ModuleDict({"embedding": nn.Embedding(VOCAB, emb_size),
                          "rnn": RNNStack(rnn_type, emb_size, hidden, emb_size, layers)})


def _seconds_per_step(model: nn.ModuleDict, ids: torch.Tensor, steps: int) -> float:
    """Median wall seconds of a forward + backward on `ids` (batch, bptt)."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        out, _ = model["rnn"](model["embedding"](ids))  # (B, T, emb)
        out.float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=400, help="width of the recurrent layers")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the three cell types")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per type and round")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ids = torch.randint(0, VOCAB, (BATCH, BPTT), generator=torch.Generator().manual_seed(0))
    models = {t: _model(t, args.hidden, args.hidden, args.layers).train() for t in TYPES}
    for model in models.values():  # warm-up: TorchScript compiles the recurrence on its first calls
        _seconds_per_step(model, ids, 2)
    seconds: dict[str, list[float]] = {t: [] for t in TYPES}
    for _ in range(args.rounds):
        for rnn_type, model in models.items():
            seconds[rnn_type].append(_seconds_per_step(model, ids, args.steps))
    tokens_per_sec = {t: round(BATCH * BPTT / statistics.median(s), 1) for t, s in seconds.items()}
    ratios = {t: round(tokens_per_sec[t] / tokens_per_sec["lstm"], 3) for t in TYPES[1:]}
    record("cells_speed", metric="min_ratio_to_nn_lstm", value=min(ratios.values()), ratios=ratios,
           tokens_per_sec=tokens_per_sec, split=f"synthetic ids (batch {BATCH} x bptt {BPTT})", precision="32-true",
           hidden_size=args.hidden, num_layers=args.layers, rounds=args.rounds, steps=args.steps,
           measure="median over rounds of the median step (forward + backward) time; training mode, no dropout")


if __name__ == "__main__":
    main()
