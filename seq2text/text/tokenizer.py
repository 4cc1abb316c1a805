"""The SentencePiece tokenizer stage: train once (cached), encode and decode in batches.

Special ids are fixed for every model seq2text trains:

    PAD_ID = 0  (<pad>)   UNK_ID = 1  (<unk>)   BOS_ID = 2  (<s>)   EOS_ID = 3  (</s>)

This module is the only importer of sentencepiece.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Literal

import numpy as np
import sentencepiece as spm

from seq2text.errors import ConfigError, DataError
from seq2text.text.textio import atomic_write_bytes, atomic_write_text, iter_lines

__all__ = ["Tokenizer", "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID", "ModelType", "default_cache_dir"]

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
NUM_SPECIAL = 4
ModelType = Literal["unigram", "bpe", "word", "char"]
_CACHE_FORMAT = 1
_THREADED_BATCH = 64  # fewer texts are encoded one by one: a batch call starts a thread pool each time


def default_cache_dir() -> Path:
    """`$SEQ2TEXT_CACHE`, else `~/.cache/seq2text`."""
    return Path(os.environ.get("SEQ2TEXT_CACHE", Path.home() / ".cache" / "seq2text"))


class Tokenizer:
    """A trained SentencePiece model (the bytes of a `.model` file) with seq2text's fixed special ids."""

    def __init__(self, model_proto: bytes) -> None:
        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self._proto)
        except Exception as error:  # sentencepiece raises RuntimeError/OSError with terse messages
            raise DataError(f"not a SentencePiece model ({error}); train one with `seq2text tokenizer train`") from None
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise DataError(f"SentencePiece model has special ids {ids}, expected (0, 1, 2, 3) for pad/unk/bos/eos")
        # word models map word by word (SentencePiece merges runs of unknown words), so counts match closed vocabs
        self._word_ids: dict[str, int] | None = None
        if self.model_type == "word":
            self._word_ids = {self._sp.IdToPiece(i)[1:]: i for i in range(NUM_SPECIAL, self.vocab_size)}

    # ----------------------------------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        files: Sequence[str | Path],
        model_type: ModelType = "unigram",
        vocab_size: int | None = 8000,
        user_symbols: Sequence[str] = (),
        character_coverage: float = 1.0,
        cache_dir: str | Path | None = None,
    ) -> Tokenizer:
        """Trains a model on the lines of `files`, or loads it from the cache if these inputs were seen before.

        Args:
            files: UTF-8 text files, one sentence or paragraph per line (empty lines are ignored).
            model_type: `unigram`, `bpe`, `word` (whitespace words: closed LM vocabularies) or `char`.
            vocab_size: total size including the 4 special ids; `None` (word/char only) keeps every type seen.
            user_symbols: pieces that are never split (e.g. `<sep>`).
            character_coverage: share of characters covered by the model (1.0 keeps all).
            cache_dir: where trained models are cached (default `default_cache_dir()/tokenizers`).
        """
        if model_type not in ("unigram", "bpe", "word", "char"):
            raise ConfigError(f"unknown tokenizer model_type {model_type!r}; use unigram, bpe, word or char")
        if vocab_size is None and model_type in ("unigram", "bpe"):
            raise ConfigError(f"{model_type} tokenizers need a vocab_size (e.g. 8000)")
        min_size = NUM_SPECIAL + len(user_symbols) + 1
        if vocab_size is not None and vocab_size < min_size:
            raise ConfigError(f"vocab_size={vocab_size} is too small: the {NUM_SPECIAL} special ids and "
                              f"{len(user_symbols)} user symbols alone need {min_size - 1}; use a larger vocab_size")
        if not 0.9 <= character_coverage <= 1.0:
            raise ConfigError(f"character_coverage={character_coverage} must lie in [0.9, 1.0]")
        options = {"format": _CACHE_FORMAT, "model_type": model_type, "vocab_size": vocab_size,
                   "user_symbols": list(user_symbols), "character_coverage": character_coverage}
        digest = _hash_inputs(files, options)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "tokenizers"
        cached = cache / f"{digest}.model"
        if cached.is_file():
            return cls(cached.read_bytes())
        tokenizer = cls(_train_proto(files, options))
        atomic_write_bytes(cached, tokenizer.model_proto)
        atomic_write_text(cached.with_suffix(".json"), json.dumps({**options, "files": [str(f) for f in files]}))
        return tokenizer

    # ----------------------------------------------------------------------------------------- io
    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Loads a `.model` file."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"tokenizer model {path} does not exist; train one with `seq2text tokenizer train`")
        return cls(path.read_bytes())

    def save(self, path: str | Path) -> None:
        """Writes the `.model` file (atomically)."""
        atomic_write_bytes(path, self._proto)

    @classmethod
    def load_or_train(cls, model: str | Path | None, files: Sequence[str | Path], model_type: ModelType,
                      vocab_size: int | None, cache_dir: str | Path | None = None) -> Tokenizer:
        """The `.model` file `model` if given, else one trained on `files` (cached under `<cache_dir>/tokenizers`)."""
        if model is not None:
            return cls.load(model)
        return cls.train(files, model_type, vocab_size, cache_dir=Path(cache_dir) / "tokenizers" if cache_dir else None)

    @property
    def model_proto(self) -> bytes:
        return self._proto

    @property
    def model_type(self) -> str:
        from sentencepiece import sentencepiece_model_pb2 as model_pb2

        proto = model_pb2.ModelProto()
        proto.ParseFromString(self._proto)
        return model_pb2.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type).lower()

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def fingerprint(self) -> str:
        """A short hash of the model, to tell tokenizers apart."""
        return hashlib.sha256(self._proto).hexdigest()[:16]

    # ----------------------------------------------------------------------------------------- use
    def encode(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        """Encodes a batch of strings to ids (empty strings give empty lists, or just bos/eos)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; wrap a single string in a list")
        if self._word_ids is None:
            if len(texts) < _THREADED_BATCH:
                return [self._sp.encode(text, add_bos=add_bos, add_eos=add_eos) for text in texts]
            return self._sp.encode(list(texts), add_bos=add_bos, add_eos=add_eos)
        lookup = self._word_ids.get
        head, tail = [BOS_ID] if add_bos else [], [EOS_ID] if add_eos else []
        return [head + [lookup(word, UNK_ID) for word in text.split()] + tail for text in texts]

    def encode_flat(self, texts: Sequence[str], add_eos: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """`encode` for bulk work: (every text's ids back to back, ids per text (texts,)), int64 each."""
        if self._word_ids is None:
            pieces = self.encode(texts, add_eos=add_eos)
            lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
            return np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=int(lengths.sum())), lengths
        words = list(map(str.split, texts))
        counts = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        found = np.fromiter(map(self._word_ids.get, chain.from_iterable(words), repeat(UNK_ID)), dtype=np.int64,
                            count=int(counts.sum()))
        if not add_eos:
            return found, counts
        lengths = counts + 1
        flat = np.full(int(lengths.sum()), EOS_ID, dtype=np.int64)
        ends = np.cumsum(lengths) - 1  # each text's eos
        keep = np.ones(len(flat), dtype=bool)
        keep[ends] = False
        flat[keep] = found
        return flat, lengths

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Decodes a batch of id lists; pad/bos/eos are dropped; unk renders as `<unk>` (word) or ` ⁇ `."""
        cleaned = [[int(i) for i in seq if int(i) not in (PAD_ID, BOS_ID, EOS_ID)] for seq in ids]
        if self._word_ids is not None:
            piece = self._sp.IdToPiece
            return [" ".join("<unk>" if i == UNK_ID else piece(i)[1:] for i in seq) for seq in cleaned]
        if len(cleaned) < _THREADED_BATCH:
            return [self._sp.decode(seq) for seq in cleaned]
        return self._sp.decode(cleaned)

    def id_to_piece(self, index: int) -> str:
        return self._sp.IdToPiece(index)

    def piece_to_id(self, piece: str) -> int:
        return self._sp.PieceToId(piece)

    def pieces(self) -> list[str]:
        return [self._sp.IdToPiece(i) for i in range(self.vocab_size)]


def _hash_inputs(files: Sequence[str | Path], options: dict) -> str:
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    if not files:
        raise DataError("no training files given to the tokenizer")
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise DataError(f"tokenizer training file {path} does not exist")
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _closed_vocab_size(sentences: Iterable[str], model_type: str, user_symbols: Sequence[str]) -> int:
    """Every word (or character) type seen, plus the special ids; `<unk>` in the text maps to UNK_ID."""
    types: set[str] = set()
    for sentence in sentences:
        types.update(sentence.split() if model_type == "word" else sentence.replace(" ", ""))
    types.discard("<unk>")
    extra = 1 if model_type == "char" else 0  # the word-boundary piece "▁"
    return len(types) + NUM_SPECIAL + len(user_symbols) + extra


def _train_proto(files: Sequence[str | Path], options: dict) -> bytes:
    sentences = [s for file in files for line in iter_lines(file) if (s := line.strip())]
    if not sentences:
        raise DataError(f"tokenizer training files {[str(f) for f in files]} contain no text (all empty)")
    model_type, vocab_size = options["model_type"], options["vocab_size"]
    if vocab_size is None:
        vocab_size = _closed_vocab_size(sentences, model_type, options["user_symbols"])
    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=writer, model_type=model_type,
            vocab_size=vocab_size, character_coverage=options["character_coverage"],
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            pad_piece="<pad>", unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
            user_defined_symbols=list(options["user_symbols"]), normalization_rule_name="identity",
            max_sentence_length=1 << 20, input_sentence_size=0, shuffle_input_sentence=False,
            hard_vocab_limit=model_type != "word" or options["vocab_size"] is not None,
            num_threads=max(1, os.cpu_count() or 1), minloglevel=2, train_extremely_large_corpus=False,
        )
    except RuntimeError as error:
        raise ConfigError(f"SentencePiece training failed: {error}. For a small corpus lower vocab_size, "
                          "or use model_type=word/char with vocab_size=None") from None
    return writer.getvalue()
