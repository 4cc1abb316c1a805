import random
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2text.cli import main
from seq2text.errors import DataError
from seq2text.text.vectors import _cooccurrences, load_word_vectors, ptb_words, train_word_vectors, write_word_vectors

POSITIVE, NEGATIVE = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]


def _reviews(count: int, seed: int = 0) -> list[list[str]]:
    """Texts where the positive words share contexts with each other, and the negative words likewise."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        words = POSITIVE if rng.random() < 0.5 else NEGATIVE
        texts.append([w for _ in range(6) for w in (rng.choice(words), rng.choice(["film", "plot", "cast"]))]
                     + [f"name{rng.randrange(40)}"])
    return texts


def test_ptb_words_split_like_sst() -> None:
    text = "I didn't like it's ending... <br /><br />It's (really) dull--no!"
    assert ptb_words(text) == ["i", "did", "n't", "like", "it", "'s", "ending", "...", "it", "'s", "(", "really",
                               ")", "dull", "--", "no", "!"]
    assert ptb_words("Don't", lowercase=False) == ["Do", "n't"]


def test_cooccurrences_stay_within_texts_and_weigh_by_distance() -> None:
    ids = np.array([0, 1, 2, -1, -1, 3, 4, -1, -1])  # texts [0 1 2] and [3 4], window 2
    counts = _cooccurrences(ids, 5, window=2).to_dense()
    assert counts[0, 1] == 1.0 and counts[0, 2] == 0.5 and counts[2, 0] == 0.5 and counts[3, 4] == 1.0
    assert counts[2, 3] == 0 and counts[1, 3] == 0 and torch.equal(counts, counts.T)


def test_words_of_like_contexts_get_like_vectors() -> None:
    words, vectors = train_word_vectors(_reviews(3000), dim=8, window=2, min_count=1)
    index = {w: i for i, w in enumerate(words)}
    assert torch.allclose(vectors.norm(dim=1), torch.ones(len(words)), atol=1e-5)

    def similarity(a: str, b: str) -> float:
        return float(vectors[index[a]] @ vectors[index[b]])

    within = [similarity(a, b) for group in (POSITIVE, NEGATIVE) for a in group for b in group if a < b]
    across = [similarity(a, b) for a in POSITIVE for b in NEGATIVE]
    assert min(within) > max(across) + 0.3, (within, across)


def test_min_count_and_too_little_text() -> None:
    words, _ = train_word_vectors(_reviews(3000), dim=8, window=2, min_count=200)
    assert "good" in words and not any(w.startswith("name") for w in words)  # each name occurs about 75 times
    with pytest.raises(DataError, match="too few for 64-dimensional"):
        train_word_vectors(_reviews(50), dim=64, window=2, min_count=1)


def test_written_vectors_load_as_classifier_embeddings(tmp_path: Path) -> None:
    words, vectors = train_word_vectors(_reviews(500), dim=8, window=2, min_count=1)
    path = write_word_vectors(tmp_path / "vectors.txt", words, vectors)
    loaded, found = load_word_vectors(path, ["<pad>", "<unk>", "<s>", "</s>", "▁good", "▁unseen"], emb_size=8)
    assert found.tolist() == [False, False, False, False, True, False]
    assert torch.allclose(loaded[4], vectors[words.index("good")], atol=1e-4)


def test_cli_trains_vectors_from_a_tsv_column(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    table = tmp_path / "reviews.tsv"
    table.write_text("id\treview\n" + "".join(f"{n}\t{' '.join(t).title()}\n" for n, t in enumerate(_reviews(800))))
    out = tmp_path / "v.txt"
    assert main(["vectors", "--input", str(table), "--text-column", "review", "--output", str(out), "--dim", "8",
                 "--window", "2", "--min-count", "1", "--ptb"]) == 0
    header, first = out.read_text().splitlines()[:2]
    assert header.split()[1] == "8" and first.split()[0].islower() and len(first.split()) == 9
    assert "800 texts" in capsys.readouterr().out
    assert main(["vectors", "--input", str(table), "--text-column", "text", "--output", str(out)]) != 0
    assert "no column 'text'" in capsys.readouterr().err
