from pathlib import Path

import pytest

from seq2text import Tokenizer
from seq2text.errors import ConfigError, DataError
from seq2text.text.tokenizer import _THREADED_BATCH, BOS_ID, EOS_ID, PAD_ID, UNK_ID
from tests.conftest import toy_lines


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_text("\n".join(toy_lines(200, 0) + ["", "Straße café naïve"]) + "\n")
    return path


@pytest.mark.parametrize("model_type,size", [("unigram", 40), ("bpe", 40), ("word", None), ("char", None)])
def test_special_ids_and_round_trip(corpus: Path, tmp_path: Path, model_type: str, size: int | None) -> None:
    tok = Tokenizer.train([corpus], model_type, size, cache_dir=tmp_path / "c")
    assert [tok.id_to_piece(i) for i in (PAD_ID, UNK_ID, BOS_ID, EOS_ID)] == ["<pad>", "<unk>", "<s>", "</s>"]
    texts = ["the cat sat on the mat", "a big dog"]
    ids = tok.encode(texts, add_bos=True, add_eos=True)
    assert all(seq[0] == BOS_ID and seq[-1] == EOS_ID for seq in ids)
    assert tok.decode(ids) == texts


def test_small_batches_read_as_large_ones_do(corpus: Path, tmp_path: Path) -> None:
    """Below `_THREADED_BATCH` texts the tokenizer calls sentencepiece per text (no thread pool); both roads
    give the same ids and texts, empty ones included."""
    tok = Tokenizer.train([corpus], "unigram", 40, cache_dir=tmp_path)
    texts = (toy_lines(_THREADED_BATCH, 1) + ["", "Straße café"]) * 2  # over the threshold: the threaded road
    ids = tok.encode(texts, add_eos=True)
    assert [tok.encode([text], add_eos=True)[0] for text in texts] == ids
    assert tok.encode(texts[:3]) == [seq[:-1] for seq in ids[:3]]
    assert tok.decode(ids) == [tok.decode([seq])[0] for seq in ids] == [" ".join(t.split()) for t in texts]
    assert tok.decode([[], ids[0]]) == ["", texts[0]]


def test_word_model_keeps_every_word_and_maps_each_unknown(corpus: Path, tmp_path: Path) -> None:
    tok = Tokenizer.train([corpus], "word", None, cache_dir=tmp_path)
    words = {w for line in corpus.read_text().splitlines() for w in line.split()}
    assert tok.vocab_size == len(words) + 4
    assert tok.encode(["zebra zebra cat"])[0][:2] == [UNK_ID, UNK_ID]  # not merged into one <unk>
    assert tok.decode(tok.encode(["zebra cat"])) == ["<unk> cat"]


def test_cache_and_user_symbols(corpus: Path, tmp_path: Path) -> None:
    first = Tokenizer.train([corpus], "unigram", 40, user_symbols=["<sep>"], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.model"))) == 1
    second = Tokenizer.train([corpus], "unigram", 40, user_symbols=["<sep>"], cache_dir=tmp_path)
    assert second.fingerprint == first.fingerprint
    assert first.piece_to_id("<sep>") in first.encode(["the<sep>cat"])[0]
    other = Tokenizer.train([corpus], "unigram", 44, cache_dir=tmp_path)  # other options: other model
    assert other.fingerprint != first.fingerprint and len(list(tmp_path.glob("*.model"))) == 2


def test_save_load(corpus: Path, tmp_path: Path) -> None:
    tok = Tokenizer.train([corpus], "bpe", 40, cache_dir=tmp_path)
    tok.save(tmp_path / "t.model")
    assert Tokenizer.load(tmp_path / "t.model").encode(["a cat"]) == tok.encode(["a cat"])


def test_bad_inputs(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(ConfigError, match="too small"):
        Tokenizer.train([corpus], "unigram", 3, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="need a vocab_size"):
        Tokenizer.train([corpus], "bpe", None, cache_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        Tokenizer.train([tmp_path / "nope.txt"], "word", None, cache_dir=tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no text"):
        Tokenizer.train([empty], "word", None, cache_dir=tmp_path)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("ok line\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 2: invalid UTF-8"):
        Tokenizer.train([latin], "word", None, cache_dir=tmp_path)
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a SentencePiece model"):
        Tokenizer.load(junk)
    with pytest.raises(TypeError):
        Tokenizer.train([corpus], "word", None, cache_dir=tmp_path).encode("a string")


@pytest.mark.real_data
def test_ptb_word_model_reproduces_standard_vocabulary(real_data: Path, tmp_path: Path) -> None:
    tok = Tokenizer.train([real_data / "ptb" / "ptb.train.txt"], "word", None, cache_dir=tmp_path)
    assert tok.vocab_size == 10_000 + 2  # 9,999 words with <unk>, <eos>=</s>, plus <pad> and <s>
    lines = (real_data / "ptb" / "ptb.test.txt").read_text().splitlines()
    assert sum(len(ids) for ids in tok.encode(lines, add_eos=True)) == 82_430  # the standard test tokens
