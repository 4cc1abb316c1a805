"""The textbook baseline: pytorch/examples' `word_language_model`, run with its defaults plus `--tied`.

A 2-layer, 200-unit LSTM with tied 200-wide embeddings, dropout 0.2, plain SGD at lr 20 divided by 4 whenever
validation does not improve, gradient clipping at 0.25, batch 20, BPTT 35, evaluation batch 10 — the example every
PyTorch user knows (https://github.com/pytorch/examples/tree/main/word_language_model). Nothing of seq2text is
used in its model, data or loop: it reads the same files, trains to a wall-clock budget (training and
validation, as seq2text's `--budget`), and scores the best-on-validation weights on the test file with the
word-level protocol: exp(summed NLL / predicted tokens), every word and every line's `<eos>` counted.

    python benchmarks/textbook_lm.py --data ../shared/data/ptb --minutes 15 --out textbook.json

`benchmarks/run.py ptb_vs_textbook` runs it after seq2text's recipe in the same script.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

# the files of each corpus, as the example's `data.Corpus` names them (PTB under its own names)
FILES = {"ptb": ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
         "wikitext-2": ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")}


class Corpus:
    """The example's `data.Corpus`: a word per whitespace-separated token, `<eos>` at each line end."""

    def __init__(self, folder: Path) -> None:
        names = FILES.get(folder.name) or FILES["wikitext-2" if (folder / "wiki.train.tokens").exists() else "ptb"]
        self.word2idx: dict[str, int] = {}
        self.train, self.valid, self.test = (self.tokenize(folder / name) for name in names)

    def tokenize(self, path: Path) -> torch.Tensor:
        ids = []
        with path.open(encoding="utf8") as f:
            for line in f:
                for word in [*line.split(), "<eos>"]:
                    ids.append(self.word2idx.setdefault(word, len(self.word2idx)))
        return torch.tensor(ids, dtype=torch.int64)


class RNNModel(nn.Module):
    """The example's `model.RNNModel` for `--model LSTM --tied`."""

    def __init__(self, ntoken: int, ninp: int = 200, nhid: int = 200, nlayers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.decoder.weight = self.encoder.weight  # --tied (needs nhid == ninp)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        self.nlayers, self.nhid, self.ntoken = nlayers, nhid, ntoken

    def forward(self, input: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """input (seq_len, batch) → log-probabilities (seq_len * batch, ntoken), new hidden."""
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
        return torch.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous()  # (steps, bsz)


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].view(-1)


def evaluate(model: RNNModel, source: torch.Tensor, bptt: int, bsz: int) -> tuple[float, int]:
    """Summed NLL (nats) and the number of predicted tokens over `source` (batchified)."""
    model.eval()
    criterion = nn.NLLLoss(reduction="sum")
    total, count = 0.0, 0
    hidden = model.init_hidden(bsz)
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            data, targets = get_batch(source, i, bptt)
            output, hidden = model(data, hidden)
            total += criterion(output, targets).item()
            count += targets.numel()
    return total, count


def train(data: Path, minutes: float, seed: int = 1111, lr: float = 20.0, clip: float = 0.25, batch_size: int = 20,
          bptt: int = 35, eval_batch_size: int = 10, max_epochs: int = 40) -> dict:
    """The example's training loop, stopped when `minutes` of training and validation have passed."""
    torch.manual_seed(seed)
    corpus = Corpus(data)
    train_data = batchify(corpus.train, batch_size)
    val_data, test_data = batchify(corpus.valid, eval_batch_size), batchify(corpus.test, eval_batch_size)
    model = RNNModel(len(corpus.word2idx))
    criterion = nn.NLLLoss()
    budget, start = minutes * 60.0, time.monotonic()
    best_val, best_state, epochs, tokens, train_seconds, stopped = math.inf, None, 0.0, 0, 0.0, False
    for epoch in range(1, max_epochs + 1):
        model.train()
        hidden = model.init_hidden(batch_size)
        steps = range(0, train_data.size(0) - 1, bptt)
        epoch_start = time.monotonic()
        done = 0
        for i in steps:
            data, targets = get_batch(train_data, i, bptt)
            hidden = tuple(h.detach() for h in hidden)  # repackage_hidden
            model.zero_grad()
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            tokens += targets.numel()
            done += 1
            if time.monotonic() - start > budget:
                stopped = True
                break
        train_seconds += time.monotonic() - epoch_start
        epochs = epoch - 1 + done / len(steps)
        val_nll, val_count = evaluate(model, val_data, bptt, eval_batch_size)
        val_loss = val_nll / val_count
        print(f"textbook: epoch {epochs:.2f} lr {lr:g} valid ppl {math.exp(val_loss):.2f} "
              f"({time.monotonic() - start:.0f} s)", flush=True)
        if val_loss < best_val:
            best_val, best_state = val_loss, copy.deepcopy(model.state_dict())
        else:
            lr /= 4.0  # anneal when validation does not improve
        if stopped or time.monotonic() - start > budget:
            break
    wall = time.monotonic() - start
    model.load_state_dict(best_state)
    test_nll, test_count = evaluate(model, test_data, bptt, eval_batch_size)
    return {"test_ppl": round(math.exp(test_nll / test_count), 2), "valid_ppl": round(math.exp(best_val), 2),
            "test_tokens": test_count, "epochs": round(epochs, 2), "train_seconds": round(train_seconds, 1),
            "wall_seconds": round(wall, 1), "train_tokens_per_sec": round(tokens / train_seconds, 1),
            "vocab_size": len(corpus.word2idx), "final_lr": lr,
            "settings": {"model": "LSTM", "tied": True, "emsize": 200, "nhid": 200, "nlayers": 2, "dropout": 0.2,
                         "lr": 20.0, "anneal": "lr / 4 when validation does not improve", "clip": clip,
                         "batch_size": batch_size, "bptt": bptt, "eval_batch_size": eval_batch_size,
                         "seed": seed, "source": "pytorch/examples word_language_model"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with the corpus (ptb/ or wikitext-2/)")
    parser.add_argument("--minutes", type=float, required=True, help="wall-clock budget (training + validation)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the result")
    parser.add_argument("--seed", type=int, default=1111, help="the example's default seed")
    args = parser.parse_args()
    result = train(args.data, args.minutes, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
