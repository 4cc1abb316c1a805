"""Text classification data: labeled TSV/CSV files → token ids → length-bucketed batches with a token budget.

Every text is encoded as `[eos] piece ...` (an LM encoder's line context), truncated to `max_len` tokens."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seq2text.data.base import BucketSampler, SplitDataModule, check_positive, split_files
from seq2text.data.batches import ClassificationBatch
from seq2text.data.catalog import CATALOG, resolve
from seq2text.errors import ConfigError, DataError
from seq2text.text.prepared import PreparedCache, Ragged, prepare_texts, text_digest
from seq2text.text.reading import (
    CLASSIFIER_MAX_TOKENS,
    ClassifierReading,
    FileFormat,
    Truncation,
    encode_texts,
    read_labeled,
    sort_labels,
)
from seq2text.text.textio import read_lines
from seq2text.text.tokenizer import ModelType, Tokenizer

__all__ = ["ClassificationDataModule", "TextRegressionDataModule", "TokenBudgetSampler", "LabeledTexts",
           "read_soft_targets", "encode_texts", "read_labeled"]


class LabeledTexts(Dataset[ClassificationBatch]):
    """Encoded texts (flat or memory-mapped); a list of rows → their `ClassificationBatch`.

    Args:
        ids: token ids of each text (each non-empty), or a `Ragged` of them.
        labels: class index (int64) or target (float32, regression) of each text, (num_texts,).
        soft: a teacher's class probabilities, (num_texts, num_classes) float32, or None.
    """

    def __init__(self, ids: Sequence[Sequence[int]] | Ragged, labels: np.ndarray, soft: np.ndarray | None = None
                 ) -> None:
        self.ids = ids if isinstance(ids, Ragged) else Ragged.from_lists(ids)
        self.lengths, self.flat = self.ids.lengths, self.ids.ids  # (N,), (total,)
        self.labels, self.soft = np.asarray(labels), soft

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, indices: list[int]) -> ClassificationBatch:
        rows = [i if i >= 0 else 0 for i in indices]  # a filler repeats text 0 under index -1
        soft = None if self.soft is None else torch.from_numpy(self.soft[rows])
        return ClassificationBatch(torch.from_numpy(self.ids.padded(rows)), torch.from_numpy(self.lengths[rows]),
                                   torch.from_numpy(self.labels[rows]), torch.tensor(indices, dtype=torch.long), soft)


class TokenBudgetSampler(BucketSampler):
    """`BucketSampler` over text `lengths` (num_texts,); in evaluation, filler batches even out the ranks."""

    def __init__(self, lengths: np.ndarray, max_tokens: int, max_batch_size: int | None = None,
                 shuffle: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        super().__init__(self.lengths, (self.lengths,), max_tokens, max_batch_size, shuffle, seed, rank, world_size,
                         "texts")


# ----------------------------------------------------------------------------------------------- module
@dataclass
class _Split:
    path: Path
    texts: list[str]
    labels: list[str]


class ClassificationDataModule(SplitDataModule):
    """Labeled texts for classification: catalog datasets (`sst2`, `imdb`) or any TSV/CSV files. The labels are
    the training file's, sorted; validation and test may use only those.

    Args:
        dataset: a catalog name (`sst2`, `imdb`), or None with explicit files.
        root: a folder holding the dataset's files (default: `$SEQ2TEXT_DATA`, `../shared/data`, hub).
        train_file: explicit training file (overrides the catalog); likewise `valid_file`, `test_file`.
        text_column: the text column (default: the catalog's, else `text`).
        label_column: the label column (default: the catalog's, else `label`).
        file_format: `tsv` (no quoting), `csv` (Python csv quoting) or `auto` (from the suffix).
        valid_fraction: share of training rows held out for validation when there is no validation file; drawn
            with `seed`.
        tokenizer_type: SentencePiece model type of a tokenizer trained on the training texts.
        tokenizer_vocab_size: its size with the 4 special ids; None keeps every word/char type (word/char only).
        tokenizer_model: a trained `.model` file instead, e.g. `<lm bundle>/tokenizer.model` to fine-tune an LM.
        tokenizer_extra_text: UTF-8 files (one text per line) the tokenizer also learns from: unlabeled text, or
            the words of `model.word_vectors` (as `seq2text vectors` writes them) so that they get their own ids.
        lowercase: lowercase every text (training and prediction).
        max_tokens: padded tokens per training batch on each process.
        max_batch_size: at most this many texts per batch (None: `max_tokens` alone decides).
        eval_max_tokens: padded tokens per validation/test batch (default `max_tokens`).
        max_len: truncate longer texts to this many tokens (start token included); None keeps them whole.
        truncation: keep the `head`, the `tail` or the first and last halves (`head_tail`) of a long text.
        backward: read every text right to left (a classifier fine-tuned from a backward LM, as in ULMFiT).
        train_soft_targets: a teacher's class probabilities of the training texts (knowledge distillation): JSON
            lines, one `{label: probability}` per training row in order (`seq2text classify --proba` prints them);
            the task's `soft_target_weight` mixes them with the gold labels.
        seed: seeds the batch order and the validation hold-out.
        cache_dir: tokenizer and hub-download cache (default `~/.cache/seq2text`).
        allow_hub: try the HF hub when no local files are found.
        prepared_dir: where the ids are cached, encoded once (default `$SEQ2TEXT_PREPARED`, else `data/prepared`).
    """

    prepared_splits = ("train", "valid", "test")

    def __init__(
        self,
        dataset: str | None = "sst2",
        root: str | None = None,
        train_file: str | None = None,
        valid_file: str | None = None,
        test_file: str | None = None,
        text_column: str | None = None,
        label_column: str | None = None,
        file_format: FileFormat = "auto",
        valid_fraction: float = 0.05,
        tokenizer_type: ModelType = "unigram",
        tokenizer_vocab_size: int | None = 8000,
        tokenizer_model: str | None = None,
        tokenizer_extra_text: list[str] | None = None,
        lowercase: bool = False,
        max_tokens: int = CLASSIFIER_MAX_TOKENS,
        max_batch_size: int | None = None,
        eval_max_tokens: int | None = None,
        max_len: int | None = None,
        truncation: Truncation = "head",
        backward: bool = False,
        train_soft_targets: str | None = None,
        seed: int = 1,
        cache_dir: str | None = None,
        allow_hub: bool = True,
        prepared_dir: str | None = None,
    ) -> None:
        super().__init__()
        check_positive(max_tokens=max_tokens, max_batch_size=max_batch_size, eval_max_tokens=eval_max_tokens)
        if max_len is not None and max_len < 2:
            raise ConfigError(f"data.max_len={max_len} must be at least 2 (the start token and one piece), or null")
        if not 0.0 < valid_fraction < 1.0:
            raise ConfigError(f"data.valid_fraction={valid_fraction} must lie in (0, 1)")
        self.save_hyperparameters()
        if dataset is not None and (dataset not in CATALOG or CATALOG[dataset].label_column is None):
            known = sorted(name for name, spec in CATALOG.items() if spec.label_column is not None)
            raise ConfigError(f"{dataset!r} is not a classification dataset; use one of {known} or set "
                              "data.dataset to null and give data.train_file/valid_file/test_file")
        spec = CATALOG.get(dataset) if dataset is not None else None
        self.text_column = text_column or (spec.text_column if spec else None) or "text"
        self.label_column = label_column or (spec.label_column if spec else None) or "label"
        explicit = {"train": train_file, "valid": valid_file, "test": test_file}
        files = split_files(dataset, explicit, tuple(spec.files) if spec else ("train", "test"), "data.{}_file",
                            lambda splits, hub: resolve(dataset, root, splits, allow_hub, hub), cache_dir)
        self.files = {k: Path(v) for k, v in files.items()}
        self._splits = {"train": self._read(self.files["train"])}
        self._train_file_texts = len(self._splits["train"].texts)  # before any hold-out: what soft targets align to
        self._train_rows: list[int] | None = None
        self._labels = sort_labels(self._splits["train"].labels)
        if len(self._labels) < 2:
            raise DataError(f"{self.files['train']} has a single label {self._labels}; a classifier needs two or more")
        if "valid" not in self.files:
            self._hold_out(valid_fraction, seed)
        self.tokenizer = self._tokenizer(tokenizer_model, tokenizer_type, tokenizer_vocab_size, tokenizer_extra_text,
                                         cache_dir)
        if train_soft_targets is not None and not Path(train_soft_targets).is_file():
            raise DataError(f"data.train_soft_targets: {train_soft_targets} does not exist; write it with "
                            "seq2text classify --model TEACHER... --proba < training texts > soft.jsonl")
        self.datasets: dict[str, LabeledTexts] = {}
        self._caches: dict[str, PreparedCache] = {}

    # ------------------------------------------------------------------------------------------ properties
    @property
    def labels(self) -> list[str]:
        """The class names, in class-index order."""
        return list(self._labels)

    @property
    def num_classes(self) -> int:
        return len(self._labels)

    @property
    def reading(self) -> ClassifierReading:
        """How this module reads texts (stored in the bundle for predictors)."""
        hp = self.hparams
        return ClassifierReading(hp.lowercase, hp.max_len, hp.truncation, hp.backward, self._budget(False),
                                 tuple(self.labels), self.text_column, self.label_column)

    def bundle_config(self) -> dict:
        return {**super().bundle_config(), "num_classes": self.num_classes}

    # ------------------------------------------------------------------------------------------ reading
    def _read(self, path: Path) -> _Split:
        texts, labels = read_labeled(path, self.text_column, self.label_column, self.hparams.file_format,
                                     self.hparams.lowercase)
        return _Split(path, texts, labels)

    def _hold_out(self, fraction: float, seed: int) -> None:
        train = self._splits["train"]
        count = max(1, round(len(train.texts) * fraction))
        if count >= len(train.texts):
            raise DataError(f"{train.path} has {len(train.texts)} rows: too few to hold out {fraction:.0%} for "
                            "validation; give data.valid_file")
        perm = np.random.default_rng(seed).permutation(len(train.texts))
        held, kept = sorted(perm[:count].tolist()), sorted(perm[count:].tolist())
        self._train_rows = kept  # rows of the training file that stay for training (soft targets follow them)
        self._splits["valid"] = _Split(train.path, [train.texts[i] for i in held], [train.labels[i] for i in held])
        self._splits["train"] = _Split(train.path, [train.texts[i] for i in kept], [train.labels[i] for i in kept])

    def _tokenizer(self, model: str | None, model_type: ModelType, vocab_size: int | None,
                   extra_text: list[str] | None, cache_dir: str | None) -> Tokenizer:
        if model is not None:
            if extra_text:
                raise ConfigError("data.tokenizer_extra_text trains a new tokenizer; it cannot go with "
                                  "data.tokenizer_model (drop one of them)")
            return Tokenizer.load(model)
        extra = [Path(path) for path in extra_text or []]
        for path in extra:
            read_lines(path)  # a missing, empty or non-UTF-8 file fails here, with its name
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "train_texts.txt"
            corpus.write_text("\n".join(self._splits["train"].texts) + "\n", encoding="utf-8")
            return Tokenizer.load_or_train(None, [corpus, *extra], model_type, vocab_size, cache_dir)

    def _class_indices(self, split: _Split) -> np.ndarray:
        index = {label: i for i, label in enumerate(self._labels)}
        unknown = next((i for i, label in enumerate(split.labels) if label not in index), None)
        if unknown is not None:
            raise DataError(f"{split.path}, row {unknown + 1} after the header: label {split.labels[unknown]!r} "
                            f"does not occur in the training file (labels: {self._labels}); fix the row or the "
                            "label column")
        return np.fromiter((index[label] for label in split.labels), dtype=np.int64, count=len(split.labels))

    def load_split(self, split: str) -> LabeledTexts:
        """Reads (if needed) and encodes one split once."""
        if split not in self.datasets:
            if split not in self._splits:
                if split not in self.files:
                    raise ConfigError(f"no {split} file; give data.{split}_file")
                self._splits[split] = self._read(self.files[split])
            data = self._splits[split]
            labels = self._class_indices(data)
            soft = self._soft_targets() if split == "train" else None
            self._caches[split] = self._prepared(split, data)
            self.datasets[split] = LabeledTexts(self._caches[split].ragged("ids"), labels, soft)
        return self.datasets[split]

    def _soft_targets(self) -> np.ndarray | None:
        """The teacher's probabilities of the training texts, (texts, num_classes) float32, or None."""
        path = self.hparams.train_soft_targets
        if path is None:
            return None
        if self.num_classes == 0:
            raise ConfigError("data.train_soft_targets holds class probabilities: it is for classifiers, not for "
                              "text regression")
        rows = read_soft_targets(Path(path), self.labels)
        if len(rows) != self._train_file_texts:
            raise DataError(f"{path} has {len(rows)} rows but the training file {self.files['train']} has "
                            f"{self._train_file_texts} texts; give one probability row per text of the training "
                            "file, in its order")
        return rows if self._train_rows is None else rows[self._train_rows]

    def _prepared(self, split: str, data: _Split) -> PreparedCache:
        """The split's ids, encoded once into the prepared cache."""
        reading = self.reading
        key = {"texts": text_digest(data.texts), "tokenizer": self.tokenizer.fingerprint,
               "reading": [reading.lowercase, reading.max_len, reading.truncation, reading.backward]}
        name = f"{self.hparams.dataset or data.path.stem}-{split}"
        # (texts are normalized already: encode's normalisation is a no-op)
        return prepare_texts(lambda: {"ids": reading.encode(self.tokenizer, data.texts)}, name, key,
                             self.tokenizer.vocab_size, self.hparams.prepared_dir)

    # ------------------------------------------------------------------------------------------ loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        data = self.load_split(split)
        rank, world = self._rank()
        sampler = TokenBudgetSampler(data.lengths, self._budget(train), self.hparams.max_batch_size, shuffle=train,
                                     seed=self.hparams.seed, rank=rank, world_size=world)
        return self._make_loader(data, sampler, train)


class TextRegressionDataModule(ClassificationDataModule):
    """Texts with a numeric target (e.g. `dataset: imdb`, `label_column: rating`): numbers in the label column."""

    @property
    def labels(self) -> list[str]:
        return []

    @property
    def num_classes(self) -> int:
        return 0

    @property
    def reading(self) -> ClassifierReading:
        return replace(super().reading, labels=())

    @property
    def train_targets(self) -> np.ndarray:
        """The training targets, (texts,) float32: a regressor's head starts from them (their mean, or the frequency
        of each value of a distribution, whose support they give)."""
        return self._class_indices(self._splits["train"])

    @property
    def target_mean(self) -> float:
        """The mean training target (the baseline to beat)."""
        return float(self.train_targets.mean())

    def _class_indices(self, split: _Split) -> np.ndarray:
        """The targets, (texts,) float32."""
        values = np.empty(len(split.labels), dtype=np.float32)
        for row, label in enumerate(split.labels):
            try:
                values[row] = float(label)
            except ValueError:
                raise DataError(f"{split.path}, row {row + 1} after the header: {self.label_column} is {label!r}, "
                                "not a number; a text regressor needs numeric targets") from None
            if not np.isfinite(values[row]):
                raise DataError(f"{split.path}, row {row + 1} after the header: {self.label_column} is {label!r}")
        return values


def read_soft_targets(path: Path, labels: Sequence[str]) -> np.ndarray:
    """A JSON-lines file of `{label: probability}` objects → (rows, len(labels)) float32 in `labels` order."""
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        try:
            row = json.loads(line)
        except ValueError as error:
            raise DataError(f"{path}, line {number}: not JSON ({error}); each line is a {{label: probability}} "
                            "object as `seq2text classify --proba` prints") from None
        if not isinstance(row, dict) or sorted(map(str, row)) != sorted(labels):
            raise DataError(f"{path}, line {number}: labels {sorted(row) if isinstance(row, dict) else row!r} "
                            f"are not the training labels {list(labels)}")
        rows.append([row[label] for label in labels])
    probabilities = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(labels))
    bad = np.flatnonzero((probabilities < 0).any(1) | (np.abs(probabilities.sum(1) - 1) > 1e-3))
    if len(bad):
        raise DataError(f"{path}, line {int(bad[0]) + 1}: {rows[int(bad[0])]} is not a probability distribution "
                        "(each ≥ 0, summing to 1)")
    return probabilities
