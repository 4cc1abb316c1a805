from pathlib import Path

import pytest
import torch

from seq2text.data.catalog import resolve
from seq2text.data.language_modeling import (
    BPTTSampler,
    LMDataModule,
    StreamShard,
    StreamWindows,
    batchify,
    count_words,
    encode_stream,
)
from seq2text.errors import ConfigError, DataError
from seq2text.text.tokenizer import EOS_ID


class _StreamCache:
    """A prepared cache of one in-memory stream (what `StreamShard` reads)."""

    def __init__(self, stream: torch.Tensor) -> None:
        self.stream = stream.numpy()

    def stats(self, split: str) -> dict:
        return {"length": len(self.stream)}

    def ids(self, split: str, start: int = 0, stop: int | None = None) -> object:
        return self.stream[start:stop]


def _old_windows(stream: torch.Tensor, batch_size: int, rank: int, world: int, pad: bool, bptt: int) -> list:
    """The in-memory road's batches: `batchify` of the whole stream, cut into windows."""
    data, mask = batchify(stream, batch_size, rank, world, pad=pad)
    return [(data[:, s: s + n], data[:, s + 1: s + 1 + n], mask[:, s + 1: s + 1 + n])
            for s, n in BPTTSampler(data.size(1), bptt)]


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 4, 7])
@pytest.mark.parametrize("backward", [False, True])
def test_stream_shard_predicts_every_token_once_as_batchify(world_size: int, batch_size: int, backward: bool) -> None:
    stream = torch.arange(100, 157)  # 57 distinct tokens, 56 targets
    seen, shapes, step = [], set(), -1 if backward else 1
    for rank in range(world_size):
        shard = StreamShard(_StreamCache(stream), "x", batch_size, rank, world_size, pad=True, backward=backward)
        windows = StreamWindows(shard, bptt=5)
        shapes.add(shard.width)
        old = _old_windows(stream.flip(0) if backward else stream, batch_size, rank, world_size, True, 5)
        for window, (source, target, mask) in zip(BPTTSampler(shard.width, 5), old, strict=True):
            batch = windows[window]
            assert torch.equal(batch.input, source) and torch.equal(batch.target, target)
            assert torch.equal(batch.mask, mask)
            seen.extend(batch.target[batch.mask].tolist())
            # each target is the token that follows its input in the stream
            pairs = zip(batch.input[batch.mask].tolist(), batch.target[batch.mask].tolist(), strict=True)
            assert all(t == i + step for i, t in pairs)
    assert sorted(seen) == (list(range(101, 157)) if not backward else list(range(100, 156)))
    assert len(shapes) == 1  # every rank the same number of batches


def test_training_batchify_gives_contiguous_shards() -> None:
    stream = torch.arange(0, 41)
    first, _ = batchify(stream, 2, rank=0, world_size=2)
    second, _ = batchify(stream, 2, rank=1, world_size=2)
    assert first.shape == second.shape == (2, 11)
    assert first[0].tolist() == list(range(0, 11)) and second[0].tolist() == list(range(20, 31))
    with pytest.raises(DataError, match="too short"):
        batchify(torch.arange(3), 8)


def test_variable_bptt_is_seeded_per_epoch_and_covers_the_stream() -> None:
    sampler = BPTTSampler(1000, 35, variable=True, seed=3)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert sum(length for _, length in first) == 999 and all(5 <= n <= 55 for _, n in first)
    assert len({n for _, n in first}) > 3


def test_stream_and_word_counts() -> None:
    from seq2text import Tokenizer

    lines = ["a b c", "", "d e"]
    assert count_words(lines) == 5 + 3  # words + one eos per line, empty lines included

    class Fake(Tokenizer):
        def __init__(self) -> None:
            pass

        def encode(self, texts, add_bos=False, add_eos=False):  # noqa: ANN001, ANN201
            return [[7] * len(t.split()) + [EOS_ID] for t in texts]

    stream = encode_stream(Fake(), lines)
    assert stream.tolist() == [EOS_ID, 7, 7, 7, EOS_ID, EOS_ID, 7, 7, EOS_ID]


def test_data_module_on_toy_files(toy_lm_dir: Path) -> None:
    dm = LMDataModule("ptb", root=str(toy_lm_dir), batch_size=4, bptt=6, eval_batch_size=3)
    dm.setup("fit")
    assert dm.vocab_size == len({w for line in (toy_lm_dir / "ptb.train.txt").read_text().split("\n")
                                 for w in line.split()}) + 4
    batches = list(dm.train_dataloader())
    assert batches[0].reset and not batches[1].reset and batches[0].input.shape == (4, 6)
    assert torch.equal(batches[0].target[:, -1], batches[1].input[:, 0])  # windows continue each other
    tokens = sum(b.num_tokens for b in dm.val_dataloader())
    assert tokens == dm.num_words["valid"]


def test_validation_batch_width_leaves_the_test_and_the_bundle_reading_alone(toy_lm_dir: Path) -> None:
    dm = LMDataModule("ptb", root=str(toy_lm_dir), batch_size=4, bptt=6, eval_batch_size=3, val_batch_size=5)
    dm.setup("fit")
    val, test = list(dm.val_dataloader()), list(dm.test_dataloader())
    assert val[0].input.size(0) == 5 and test[0].input.size(0) == 3
    assert sum(b.num_tokens for b in val) == dm.num_words["valid"]  # every token once, whatever the width
    assert dm.reading.eval_batch_size == 3
    with pytest.raises(ConfigError, match="data.val_batch_size"):
        LMDataModule("ptb", root=str(toy_lm_dir), val_batch_size=0)


def test_catalog_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        resolve("ptbb")
    monkeypatch.setenv("SEQ2TEXT_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"ptb\.train\.txt.*SEQ2TEXT_DATA"):
        resolve("ptb")
    monkeypatch.delenv("SEQ2TEXT_DATA")
    monkeypatch.chdir(tmp_path)  # no ../shared/data here; hub is offline in tests
    with pytest.raises(DataError, match="hub dataset ptb-text-only/ptb_text_only"):
        resolve("ptb", cache_dir=tmp_path / "hub")
    with pytest.raises(ConfigError, match="data.batch_size"):
        LMDataModule("ptb", batch_size=0)
    with pytest.raises(ConfigError, match="train_file"):
        LMDataModule(None, valid_file="x", test_file="y")


def test_empty_and_bad_files(tmp_path: Path, toy_lm_dir: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="contain no text"):
        LMDataModule(None, train_file=str(tmp_path / "empty.txt"), valid_file=str(toy_lm_dir / "ptb.valid.txt"),
                     test_file=str(toy_lm_dir / "ptb.test.txt"))
    dm = LMDataModule(None, train_file=str(toy_lm_dir / "ptb.train.txt"), valid_file=str(tmp_path / "empty.txt"),
                      test_file=str(toy_lm_dir / "ptb.test.txt"))
    with pytest.raises(DataError, match="empty.txt is empty"):
        dm.setup("validate")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe broken\n")
    dm = LMDataModule(None, train_file=str(toy_lm_dir / "ptb.train.txt"), valid_file=str(bad),
                      test_file=str(toy_lm_dir / "ptb.test.txt"))
    with pytest.raises(DataError, match=r"bad\.txt, line 2: invalid UTF-8"):
        dm.setup("validate")


@pytest.mark.real_data
def test_real_ptb_counts(real_data: Path) -> None:
    files = resolve("ptb", real_data / "ptb")
    dm = LMDataModule(None, train_file=str(files["train"]), valid_file=str(files["valid"]),
                      test_file=str(files["test"]))
    dm.setup("test")
    assert dm.vocab_size == 10_002 and dm.num_words["test"] == 82_430
    assert len(dm.streams["test"]) == 82_431  # leading context eos + every token
