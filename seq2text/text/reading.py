"""How each task reads text, for training and for prediction alike (no Lightning here).

One frozen spec per task (`LMReading`, `ClassifierReading`, `TranslationReading`) says how its text becomes ids; a
data module writes it into the bundle and a predictor reads through it, so text is read exactly as in training.
Also here: the text readers, the encoders, the padding and the one length-bucketing batcher (`cut_batches`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from seq2text.errors import BundleError, ConfigError, DataError
from seq2text.text.textio import read_lines, read_text
from seq2text.text.tokenizer import EOS_ID, PAD_ID, Tokenizer

__all__ = ["LMReading", "ClassifierReading", "TranslationReading", "CLASSIFIER_MAX_TOKENS", "TRANSLATION_MAX_TOKENS",
           "normalize_text", "read_labeled", "read_parallel", "sort_labels", "count_words", "encode_stream",
           "batchify", "stream_layout", "encode_texts", "encode_sources", "pad_ids", "cut_batches", "length_batches",
           "Truncation", "FileFormat"]

Truncation = Literal["head", "tail", "head_tail"]
FileFormat = Literal["auto", "tsv", "csv"]
CLASSIFIER_MAX_TOKENS = 4000  # padded tokens per classification batch (data.max_tokens and the predictor's default)
TRANSLATION_MAX_TOKENS = 4096  # padded source tokens per translation batch (likewise)


# ------------------------------------------------------------------------------------------------- specs
class _Spec:
    """Written into a bundle as a plain dict; read back from it (older bundles kept these keys under `data`)."""

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (tuples as lists, also inside a dict field)."""
        def plain(v: object) -> object:
            return list(v) if isinstance(v, tuple) else {k: plain(x) for k, x in v.items()} if isinstance(v, dict) \
                else v

        return {k: plain(v) for k, v in asdict(self).items()}

    @classmethod
    def from_bundle(cls, config: Mapping[str, Any], path: str | Path = "bundle") -> Any:  # noqa: ANN401
        """The spec in a bundle's config.json (`reading`, or `data` in older bundles)."""
        source = config.get("reading") or config.get("data") or {}
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in source.items() if k in known}
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise BundleError(f"{path}/config.json: its reading settings are not valid ({error}); export the "
                              "bundle again with this seq2text version") from None


@dataclass(frozen=True)
class LMReading(_Spec):
    """A language model's text: one running stream of lines, each ended by `</s>`, read right to left if `backward`;
    evaluated in `eval_batch_size` columns and `eval_bptt` windows."""

    backward: bool = False
    eval_batch_size: int = 10
    eval_bptt: int = 35

    def __post_init__(self) -> None:
        self._positive("eval_batch_size", "eval_bptt")

    def stream(self, tokenizer: Tokenizer, lines: Sequence[str]) -> torch.Tensor:
        """(num_tokens + 1,) ids: see `encode_stream`."""
        return encode_stream(tokenizer, lines, self.backward)

    def ids(self, tokenizer: Tokenizer, text: str) -> list[int]:
        """One text on its own, in reading order, without its boundaries."""
        ids = tokenizer.encode([text])[0]
        return ids[::-1] if self.backward else ids


@dataclass(frozen=True)
class ClassifierReading(_Spec):
    """A classifier's text: normalised, optionally lowercased, `[eos] pieces`, truncated (see `encode_texts`), in a
    direction; `eval_max_tokens` padded tokens per prediction batch, `labels` in class-index order, and the training
    files' columns (the defaults of `seq2text evaluate`)."""

    lowercase: bool = False
    max_len: int | None = None
    truncation: Truncation = "head"
    backward: bool = False
    eval_max_tokens: int = CLASSIFIER_MAX_TOKENS
    labels: tuple[str, ...] = ()
    text_column: str = "text"
    label_column: str = "label"

    def __post_init__(self) -> None:
        self._positive("eval_max_tokens")
        if self.max_len is not None and (not isinstance(self.max_len, int) or self.max_len < 2):
            raise ValueError(f"max_len={self.max_len!r} must be an integer ≥ 2 or None")
        if self.truncation not in ("head", "tail", "head_tail"):
            raise ValueError(f"truncation={self.truncation!r} must be head, tail or head_tail")
        if not isinstance(self.labels, tuple) or not all(isinstance(label, str) for label in self.labels):
            raise ValueError(f"labels={self.labels!r} must be a list of class names")

    def encode(self, tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
        """Raw texts → ids as training read them (normalised here; `read_labeled` texts are already)."""
        normalized = [normalize_text(text, self.lowercase) for text in texts]
        return encode_texts(tokenizer, normalized, self.max_len, self.truncation, self.backward)

    def batches(self, ids: Sequence[Sequence[int]], max_tokens: int | None = None) -> list[list[int]]:
        """Indices of `ids` grouped by length within the padded-token budget (default `eval_max_tokens`)."""
        return length_batches([len(seq) for seq in ids], max_tokens or self.eval_max_tokens)


@dataclass(frozen=True)
class TranslationReading(_Spec):
    """A translation model's source text: pieces cut to `max_src_len`, then `</s>`; `eval_max_tokens` padded source
    tokens per decoding batch; the language codes it was trained on."""

    max_src_len: int = 250
    eval_max_tokens: int = TRANSLATION_MAX_TOKENS
    src_lang: str = "src"
    trg_lang: str = "trg"

    def __post_init__(self) -> None:
        self._positive("max_src_len", "eval_max_tokens")

    def encode(self, tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Source ids and how many texts were cut (see `encode_sources`)."""
        return encode_sources(tokenizer, texts, self.max_src_len)

    def batches(self, ids: Sequence[Sequence[int]], max_items: int, max_tokens: int | None = None
                ) -> list[list[int]]:
        """Indices of `ids` grouped by length, each group within `max_items` sources and the token budget."""
        return length_batches([len(seq) for seq in ids], max_tokens or self.eval_max_tokens, max_items)


# ------------------------------------------------------------------------------------------------ readers
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def normalize_text(text: str, lowercase: bool = False) -> str:
    """HTML line breaks (IMDb's `<br />`) and runs of whitespace → single spaces; optionally lowercased."""
    text = " ".join(_HTML_BREAK.sub(" ", text).split())
    return text.lower() if lowercase else text


def read_labeled(path: str | Path, text_column: str = "text", label_column: str | None = "label",
                 file_format: FileFormat = "auto", lowercase: bool = False) -> tuple[list[str], list[str]]:
    """(texts, labels) of a TSV (`csv.QUOTE_NONE`) or CSV file with a header row: texts normalized, labels stripped
    (none when `label_column` is None); blank lines skipped. A DataError names the file and line of a bad row."""
    path = Path(path)
    suffixes = {".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".csv": "csv"}
    fmt = file_format if file_format != "auto" else suffixes.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {path} from its suffix; set data.file_format to tsv or csv")
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    reader = csv.reader(io.StringIO(read_text(path), newline=""), **dialect)
    header = [name.strip() for name in next(reader, [])]
    if not header:
        raise DataError(f"{path} is empty; a {fmt.upper()} file with a header row is expected")
    for column, option in ((text_column, "text_column"), (label_column, "label_column")):
        if column is not None and column not in header:
            raise DataError(f"{path} has no column {column!r} (header: {header}); set data.{option} to the "
                            f"name of the {option.split('_')[0]} column")
    ti = header.index(text_column)
    li = ti if label_column is None else header.index(label_column)
    texts, labels = [], []
    for row in reader:
        if not row:
            continue
        where = f"{path}, line {reader.line_num}"
        if len(row) != len(header):
            hint = " (a TSV text may not contain tabs)" if fmt == "tsv" else ""
            raise DataError(f"{where}: {len(row)} fields, but the header has {len(header)}{hint}")
        text, label = normalize_text(row[ti], lowercase), row[li].strip()
        if not text or not label:
            raise DataError(f"{where}: empty {'text' if not text else 'label'}; remove the row or fill it in")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataError(f"{path} has a header but no rows")
    return texts, labels if label_column is not None else []


def read_parallel(src_path: str | Path, trg_path: str | Path) -> tuple[list[str], list[str]]:
    """Reads two line-aligned UTF-8 files."""
    src_lines, trg_lines = read_lines(src_path), read_lines(trg_path)
    if len(src_lines) != len(trg_lines):
        raise DataError(f"{src_path} has {len(src_lines)} lines but {trg_path} has {len(trg_lines)}; "
                        "parallel files must align line by line")
    return src_lines, trg_lines


def sort_labels(values: Sequence[str]) -> list[str]:
    """The label set in a fixed order: numerically if every label is an integer, else as strings."""
    unique = set(values)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


# ----------------------------------------------------------------------------------------------- encoders
def count_words(lines: Sequence[str]) -> int:
    """Words + one end-of-line per line: the denominator of word-level perplexity."""
    return sum(len(line.split()) + 1 for line in lines)


def encode_stream(tokenizer: Tokenizer, lines: Sequence[str], backward: bool = False) -> torch.Tensor:
    """Lines as one stream `[eos] line1 [eos] line2 [eos] ...`, (num_tokens + 1,); the leading eos is context only.
    `backward` reverses the whole stream (the same tokens, right to left)."""
    pieces = tokenizer.encode(lines, add_eos=True)
    flat = np.fromiter((i for seq in pieces for i in seq), dtype=np.int64, count=sum(map(len, pieces)))
    stream = torch.cat([torch.tensor([EOS_ID]), torch.from_numpy(flat)])
    return stream.flip(0) if backward else stream


def stream_layout(tokens: int, batch_size: int, world_size: int = 1, pad: bool = False) -> tuple[int, int]:
    """(targets per rank, columns per rank) of a stream of `tokens` ids cut as `batchify` cuts it."""
    targets = tokens - 1
    per_rank = math.ceil(targets / world_size) if pad else targets // world_size
    columns = math.ceil(per_rank / batch_size) if pad else per_rank // batch_size
    if columns < 1:
        raise DataError(f"the token stream ({tokens} tokens) is too short for batch_size={batch_size} on "
                        f"{world_size} process(es); use a smaller batch size or more text")
    return per_rank, columns


def batchify(stream: torch.Tensor, batch_size: int, rank: int = 0, world_size: int = 1,
             pad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's shard of `stream` (num_tokens,) in `batch_size` columns overlapping by one token, so every token
    after the first is a target once. `pad`: pad the end (mask False) instead of dropping the remainder.

    Returns:
        (data, mask): (batch_size, columns + 1) ids, and a bool mask that is True where the id is real text.
    """
    per_rank, columns = stream_layout(stream.numel(), batch_size, world_size, pad)
    shard = stream[rank * per_rank: rank * per_rank + min(per_rank, batch_size * columns) + 1]
    flat = torch.full((batch_size * columns + 1,), PAD_ID, dtype=torch.long)
    flat[: shard.numel()] = shard
    mask = torch.arange(flat.numel()) < shard.numel()
    return flat.unfold(0, columns + 1, columns), mask.unfold(0, columns + 1, columns)  # (batch, columns + 1)


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_len: int | None = None,
                 truncation: Truncation = "head", backward: bool = False) -> list[list[int]]:
    """Texts as `[eos] ids...`, at most `max_len` tokens, keeping the `head`, `tail` or both halves (`head_tail`) of a
    longer text; `backward` reverses the ids after truncation (`[eos] last ... first`)."""
    encoded = []
    for ids in tokenizer.encode(list(texts)):
        if max_len is not None and len(ids) > max_len - 1:
            keep = max_len - 1
            head = {"head": keep, "tail": 0, "head_tail": (keep + 1) // 2}[truncation]
            ids = ids[:head] + ids[len(ids) - (keep - head):]
        encoded.append([EOS_ID, *(ids[::-1] if backward else ids)])
    return encoded


def encode_sources(tokenizer: Tokenizer, texts: Sequence[str], max_src_len: int) -> tuple[list[list[int]], int]:
    """Source ids as the model reads them (pieces cut to `max_src_len`, then eos), and how many texts were cut."""
    pieces = tokenizer.encode(list(texts))
    cut = sum(len(ids) > max_src_len for ids in pieces)
    return [ids[:max_src_len] + [EOS_ID] for ids in pieces], cut


def pad_ids(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads id lists with PAD_ID → (ids (batch, longest), lengths (batch,))."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    text = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        text[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return text, lengths


# ------------------------------------------------------------------------------------------------ batcher
def cut_batches(order: np.ndarray, sizes: np.ndarray, max_tokens: float, max_items: float = math.inf,
                parts: int = 1) -> list[list[int]]:
    """Greedy cut of `order` into batches of at least `parts` items, dealt to `parts` processes (every `parts`-th
    item), each part within `max_tokens` padded (items × largest size) and `max_items` items (an item larger than
    the budget still gets a batch). The cut points depend on the sizes alone.

    Args:
        order: indices sorted by size, (n,).
        sizes: the size of every item (indexed by `order`'s values), (num_items,).
    """
    batches, current, longest = [], [], 0
    for index, size in zip(order.tolist(), sizes[order].tolist(), strict=True):
        new_longest = max(longest, size)
        per_part = -(-(len(current) + 1) // parts)
        if len(current) >= parts and (per_part * new_longest > max_tokens or per_part > max_items):
            batches.append(current)
            current, new_longest = [], size
        current.append(index)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def length_batches(lengths: Sequence[int], max_tokens: float, max_items: float = math.inf) -> list[list[int]]:
    """Prediction batches: indices sorted by length (stable), cut by `cut_batches`."""
    sizes = np.asarray(lengths, dtype=np.int64)
    return cut_batches(np.argsort(sizes, kind="stable"), sizes, max_tokens, max_items)
