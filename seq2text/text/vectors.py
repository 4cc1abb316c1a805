"""In-domain word vectors from unlabeled text, for when pretrained vectors cannot be downloaded.

The vectors are the truncated SVD of the positive pointwise mutual information (PPMI) matrix of word
co-occurrences (Levy, Goldberg and Dagan 2015: harmonic window weights, context distribution smoothing 0.75,
eigenvalue weighting 0.5), which matches skip-gram on word similarity and takes a minute on a CPU. They are
written in the word2vec text format that `ClassificationTask(word_vectors=...)` reads:

    seq2text vectors --input reviews.txt --output vectors.txt --dim 300 --ptb
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from seq2text.errors import DataError
from seq2text.text.reading import normalize_text
from seq2text.text.textio import iter_lines

__all__ = ["load_word_vectors", "ptb_words", "train_word_vectors", "write_word_vectors"]

_CLITIC = re.compile(r"(?i)(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_PUNCT = re.compile(r"(\.\.\.|--|[.,!?;:()\[\]{}\"/*]|``|'')")


def ptb_words(text: str, lowercase: bool = True) -> list[str]:
    """Splits text into words the way the Penn Treebank (and SST) do: clitics (`do n't`, `it 's`) and punctuation
    apart, HTML line breaks dropped; lowercased unless told otherwise."""
    text = _PUNCT.sub(r" \1 ", _CLITIC.sub(r"\1 \2", normalize_text(text, lowercase)))
    return text.split()


def _cooccurrences(ids: np.ndarray, vocab_size: int, window: int) -> torch.Tensor:
    """Symmetric co-occurrence weights (1/distance within `window`) of `ids` (N,), texts apart by `window` -1 entries
    → (vocab_size, vocab_size) coalesced sparse float32."""
    rows, cols, weights = [], [], []
    for distance in range(1, window + 1):
        left, right = ids[:-distance], ids[distance:]
        keep = (left >= 0) & (right >= 0)
        rows += [left[keep], right[keep]]
        cols += [right[keep], left[keep]]
        weights.append(np.full(2 * int(keep.sum()), 1.0 / distance, dtype=np.float32))
    index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]))
    return torch.sparse_coo_tensor(index, torch.from_numpy(np.concatenate(weights)),
                                   (vocab_size, vocab_size), check_invariants=False).coalesce()


def _ppmi(counts: torch.Tensor, smoothing: float = 0.75) -> torch.Tensor:
    """Positive PMI of a sparse co-occurrence matrix, with the context counts raised to `smoothing`."""
    index, values = counts.indices(), counts.values()
    totals = torch.sparse.sum(counts, dim=1).to_dense()
    word_p = totals / totals.sum()
    smoothed = totals.pow(smoothing)
    context_p = smoothed / smoothed.sum()
    pmi = torch.log(values / values.sum()) - torch.log(word_p[index[0]]) - torch.log(context_p[index[1]])
    keep = pmi > 0
    return torch.sparse_coo_tensor(index[:, keep], pmi[keep], counts.shape, check_invariants=False).coalesce()


def train_word_vectors(texts: Iterable[Sequence[str]], dim: int = 300, window: int = 5, min_count: int = 5,
                       max_vocab: int | None = None, seed: int = 0) -> tuple[list[str], torch.Tensor]:
    """PPMI-SVD word vectors of tokenized texts.

    Args:
        texts: one list of words per text (co-occurrences never cross texts).
        dim: vector width.
        window: words each side that count as context (weighted 1/distance).
        min_count: words seen fewer times get no vector (and are dropped from the windows, as word2vec does).
        max_vocab: keep at most this many of the most frequent words.
        seed: the randomized SVD's seed.

    Returns:
        (words by descending frequency, vectors (len(words), dim) with unit-length rows).
    """
    texts = [list(words) for words in texts]
    frequency = Counter(word for words in texts for word in words)
    words = [w for w, n in frequency.most_common(max_vocab) if n >= min_count]
    if len(words) <= dim:
        raise DataError(f"only {len(words)} words occur at least {min_count} times, too few for {dim}-dimensional "
                        f"vectors; give more text, or lower min_count or dim")
    lookup = {word: number for number, word in enumerate(words)}
    gap = [-1] * window
    stream = [i for words_ in texts for i in [*(lookup[w] for w in words_ if w in lookup), *gap]]
    counts = _cooccurrences(np.asarray(stream, dtype=np.int64), len(words), window)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        left, values, _ = torch.svd_lowrank(_ppmi(counts), q=dim, niter=4)
    vectors = left * values.sqrt()
    return words, vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-8)


def write_word_vectors(path: str | Path, words: Sequence[str], vectors: torch.Tensor) -> Path:
    """Writes word2vec text format (a `count dim` header, then `word v1 ... vD` per line), atomically."""
    from seq2text.text.textio import atomic_write_text

    rows = (f"{word} " + " ".join(f"{v:.5f}" for v in row) for word, row in zip(words, vectors.tolist(), strict=True))
    atomic_write_text(path, f"{len(words)} {vectors.shape[1]}\n" + "\n".join(rows) + "\n")
    return Path(path)


def _piece_words(pieces: Sequence[str]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Word → ids of the SentencePiece pieces it matches exactly, and lowercased (special ids skipped)."""
    exact: dict[str, list[int]] = {}
    lower: dict[str, list[int]] = {}
    for index, piece in enumerate(pieces):
        word = piece.removeprefix("\u2581")
        if index < 4 or not word:
            continue
        exact.setdefault(word, []).append(index)
        lower.setdefault(word.lower(), []).append(index)
    return exact, lower


def load_word_vectors(path: str | Path, pieces: Sequence[str], emb_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reads GloVe / word2vec / fastText text vectors (`word v1 ... vD` lines, D = `emb_size`, streamed) for the
    tokenizer's `pieces`: a piece `▁word` (or `ing`) takes the vector of `word`, else of its lowercase form.

    Returns:
        (vectors (vocab, emb_size) with zero rows where none was found, found (vocab,) bool).
    """
    exact, lower = _piece_words(pieces)
    vectors = torch.zeros(len(pieces), emb_size)
    found = torch.zeros(len(pieces), dtype=torch.bool)
    exact_hit = torch.zeros(len(pieces), dtype=torch.bool)
    for number, line in enumerate(iter_lines(path), start=1):  # strict UTF-8; a bad line is named
        parts = line.rstrip().split(" ")
        if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue  # word2vec / fastText header
        if len(parts) - 1 < emb_size or (number <= 2 and len(parts) - 1 != emb_size):
            raise DataError(f"{path}, line {number}: {len(parts) - 1} values, but emb_size is {emb_size}; "
                            f"set the embedding size to the vectors' width")
        word = " ".join(parts[:-emb_size])
        ids = exact.get(word)
        targets = list(ids) if ids else [i for i in lower.get(word.lower(), ()) if not exact_hit[i]]
        if targets:
            vectors[targets] = torch.tensor([float(v) for v in parts[-emb_size:]])
            found[targets] = True
            if ids:
                exact_hit[targets] = True
    return vectors, found
