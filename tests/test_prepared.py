"""Prepared caches (issue 13): tokenized once into memory-mapped files, the same ids and batches as reading the
text, each rank mapping its shard, and faults (kills, truncation, foreign caches, full disks) handled."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import seq2text.text.prepared as prepared
from seq2text.cli import main
from seq2text.data.catalog import resolve, resolve_parallel
from seq2text.data.classification import ClassificationDataModule, LabeledTexts
from seq2text.data.language_modeling import BPTTSampler, LMDataModule, StreamShard, StreamWindows
from seq2text.data.translation import ParallelCorpus, TranslationDataModule
from seq2text.errors import ConfigError, DataError
from seq2text.text.prepared import PreparedCache, expand_inputs, id_dtype, prepare_lm
from seq2text.text.reading import batchify, count_words, encode_stream
from seq2text.text.textio import read_lines
from seq2text.text.tokenizer import Tokenizer
from tests.conftest import REPO, toy_lines


@pytest.fixture()
def word_tokenizer(toy_lm_dir: Path) -> Tokenizer:
    return Tokenizer.load_or_train(None, [toy_lm_dir / "ptb.train.txt"], "word", None)


def _caches(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("workers", [1, 2])
def test_prepared_stream_is_encode_stream_whatever_the_chunks(tmp_path: Path, word_tokenizer: Tokenizer,
                                                              monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    corpus = tmp_path / "corpus.txt"
    lines = toy_lines(500, 3) + ["", "  spaced  out ", "the\r", "unseenword cat"]
    corpus.write_bytes(("\n".join(lines) + "\n").encode())
    monkeypatch.setattr(prepared, "CHUNK_BYTES", 300)  # many chunks, cut at line ends
    cache = prepare_lm([corpus], word_tokenizer, "toy", tmp_path / "prep", workers=workers)
    stream = cache.ids("stream")
    assert stream.dtype == np.uint16
    expected = encode_stream(word_tokenizer, read_lines(corpus))
    assert np.array_equal(np.asarray(stream, dtype=np.int64), expected.numpy())
    stats = cache.stats("stream")
    assert stats["words"] == count_words(read_lines(corpus)) and stats["lines"] == len(lines)
    assert stats["chars"] == sum(len(line.rstrip("\r")) + 1 for line in lines)
    offsets = cache.ragged("stream").offsets
    assert offsets[0] == 1 and offsets[-1] == len(stream)  # line i is stream[offsets[i]:offsets[i + 1]]


def test_many_files_and_globs_read_in_order(tmp_path: Path, word_tokenizer: Tokenizer) -> None:
    for i in range(3):
        (tmp_path / f"part{i}.txt").write_text("\n".join(toy_lines(20, 10 + i)) + "\n")
    files = expand_inputs([str(tmp_path / "part2.txt"), str(tmp_path / "part[01].txt")])
    assert [f.name for f in files] == ["part2.txt", "part0.txt", "part1.txt"]
    cache = prepare_lm(files, word_tokenizer, "parts", tmp_path / "prep", workers=2)
    lines = [line for f in files for line in read_lines(f)]
    assert np.array_equal(np.asarray(cache.ids("stream"), dtype=np.int64),
                          encode_stream(word_tokenizer, lines).numpy())
    with pytest.raises(DataError, match=r"nothing\*\.txt matches no file"):
        expand_inputs(str(tmp_path / "nothing*.txt"))


def test_id_dtype_follows_the_vocabulary() -> None:
    assert id_dtype(65_535) == np.uint16 and id_dtype(65_536) == np.uint32


def test_cache_is_reused_under_any_name_and_rebuilt_when_the_input_changes(tmp_path: Path, word_tokenizer: Tokenizer,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(toy_lines(50, 4)) + "\n")
    first = prepare_lm([corpus], word_tokenizer, "one", tmp_path / "prep")
    monkeypatch.setattr(prepared, "_encode_all", lambda *a: pytest.fail("encoded again"))
    again = prepare_lm([corpus], word_tokenizer, "another-name", tmp_path / "prep")
    assert again.folder == first.folder
    monkeypatch.undo()
    corpus.write_text("\n".join(toy_lines(60, 5)) + "\n")  # new size and time: a new key
    changed = prepare_lm([corpus], word_tokenizer, "one", tmp_path / "prep")
    assert changed.folder != first.folder and changed.stats("stream")["lines"] == 60


def test_truncated_and_foreign_caches_are_rebuilt(tmp_path: Path, word_tokenizer: Tokenizer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(toy_lines(80, 6)) + "\n")
    cache = prepare_lm([corpus], word_tokenizer, "c", tmp_path / "prep")
    whole = np.array(cache.ids("stream"))
    bin_file = cache.folder / "stream.bin"
    bin_file.write_bytes(bin_file.read_bytes()[:-10])  # truncated (a copy cut short)
    assert PreparedCache.open(cache.folder, cache.meta["key"]) is None
    assert "has" in caplog.text and "bytes" in caplog.text
    rebuilt = prepare_lm([corpus], word_tokenizer, "c", tmp_path / "prep")
    assert np.array_equal(np.array(rebuilt.ids("stream")), whole)
    meta = json.loads((cache.folder / "meta.json").read_text())
    meta["key"] = "0" * 16  # a cache of another tokenizer or options moved here
    (cache.folder / "meta.json").write_text(json.dumps(meta))
    again = prepare_lm([corpus], word_tokenizer, "c", tmp_path / "prep")
    assert np.array_equal(np.array(again.ids("stream")), whole) and len(_caches(tmp_path / "prep")) == 1


def test_a_kill_during_prepare_leaves_nothing_taken_as_whole(tmp_path: Path, toy_lm_dir: Path,
                                                             word_tokenizer: Tokenizer) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(toy_lines(400, 7)) + "\n")
    tokenizer_file = tmp_path / "tok.model"
    word_tokenizer.save(tokenizer_file)
    script = ("import os, sys; import seq2text.text.prepared as p\n"
              "real = p._ArrayWriter.write\n"
              "def write(self, *a):\n    real(self, *a)\n    os._exit(9)  # killed after the first chunk is written\n"
              "p._ArrayWriter.write = write; p.CHUNK_BYTES = 500\n"
              "from seq2text.cli import main; sys.exit(main(sys.argv[1:]))\n")
    command = [sys.executable, "-c", script, "prepare", "--input", str(corpus), "--tokenizer-model",
               str(tokenizer_file), "--output-dir", str(tmp_path / "prep"), "--workers", "1"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 9
    leftovers = list((tmp_path / "prep").iterdir())
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)
    cache = prepare_lm([corpus], word_tokenizer, "c", tmp_path / "prep")  # the half-written folder is ignored
    assert np.array_equal(np.asarray(cache.ids("stream"), dtype=np.int64),
                          encode_stream(word_tokenizer, read_lines(corpus)).numpy())


def test_a_full_disk_is_a_clear_error_that_leaves_nothing(tmp_path: Path, word_tokenizer: Tokenizer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(toy_lines(30, 8)) + "\n")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepared._ArrayWriter, "write", full)
    with pytest.raises(DataError, match="disk is full.*SEQ2TEXT_PREPARED"):
        prepare_lm([corpus], word_tokenizer, "c", tmp_path / "prep")
    assert list((tmp_path / "prep").iterdir()) == []


def test_bad_files_are_named(tmp_path: Path, word_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat\n" * 100 + b"a \xff dog\n")
    monkeypatch.setattr(prepared, "CHUNK_BYTES", 200)
    with pytest.raises(DataError, match=r"bad\.txt, line 101: invalid UTF-8 at byte 2"):
        prepare_lm([bad], word_tokenizer, "bad", tmp_path / "prep", workers=2)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty.txt is empty"):
        prepare_lm([tmp_path / "empty.txt"], word_tokenizer, "e", tmp_path / "prep")
    assert [p for p in (tmp_path / "prep").iterdir()] == []


def test_hub_datasets_are_streamed_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def load_dataset(hub_id: str, config: str | None, split: str, **kwargs: object) -> object:
        calls.append((hub_id, split, kwargs.get("streaming")))
        return ({"text": f" {split} line {i} "} for i in range(5))  # an iterable, as a streamed dataset is

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.delenv("SEQ2TEXT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    files = resolve("wikitext2", cache_dir=tmp_path / "hub")
    assert all(streaming is True for *_, streaming in calls) and len(calls) == 3
    assert read_lines(files["valid"]) == [f"validation line {i}" for i in range(5)]


def test_lm_module_prepares_once_and_maps_only_its_shard(toy_lm_dir: Path, tmp_path: Path) -> None:
    dm = LMDataModule("ptb", root=str(toy_lm_dir), batch_size=4, bptt=6, prepared_dir=str(tmp_path / "prep"))
    dm.prepare_data()
    assert len(_caches(tmp_path / "prep")) == 3  # one per split
    stream = torch.from_numpy(np.asarray(dm.prepared("train").ids("stream"), dtype=np.int64))
    for rank in range(2):
        shard = StreamShard(dm.prepared("train"), "stream", 4, rank, 2)
        assert len(shard.ids) <= len(stream) // 2 + 1  # this rank's part only
        data, mask = batchify(stream, 4, rank, 2)
        windows = StreamWindows(shard, 6)
        for start, length in BPTTSampler(shard.width, 6):
            batch = windows[(start, length)]
            assert torch.equal(batch.input, data[:, start: start + length])
            assert torch.equal(batch.target, data[:, start + 1: start + 1 + length])


def test_prepare_command_with_files_and_with_a_recipe(toy_lm_dir: Path, tmp_path: Path, word_tokenizer: Tokenizer,
                                                      capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "tok.model"
    word_tokenizer.save(model)
    prep = tmp_path / "prep"
    assert main(["prepare", "--input", str(toy_lm_dir / "ptb.tr*.txt"), "--tokenizer-model", str(model),
                 "--output-dir", str(prep)]) == 0
    assert "ptb.train" in capsys.readouterr().out and len(_caches(prep)) == 1
    dm = LMDataModule(None, train_file=str(toy_lm_dir / "ptb.train.txt"), valid_file=str(toy_lm_dir / "ptb.valid.txt"),
                      test_file=str(toy_lm_dir / "ptb.test.txt"), tokenizer_model=str(model), prepared_dir=str(prep))
    assert dm.prepared("train").folder == _caches(prep)[0]  # the command's cache is the one training finds
    recipe = str(REPO / "recipes" / "ptb_lstm_small.yaml")
    assert main(["prepare", "--config", recipe, "--data.root", str(toy_lm_dir), "--data.prepared_dir",
                 str(tmp_path / "prep2")]) == 0
    out = capsys.readouterr().out
    assert all(f"{split}:" in out for split in ("train", "valid", "test")) and "ready in" in out
    assert main(["prepare", "--config", recipe, "--data.bacth_size", "3"]) == 1
    assert "takes no argument bacth_size" in capsys.readouterr().err
    assert main(["prepare", "--input", "x.txt"]) == 1


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.real_data
@pytest.mark.parametrize("dataset", ["ptb", "wikitext2"])
def test_real_lm_batches_are_unchanged(real_data: Path, tmp_path: Path, dataset: str) -> None:
    dm = LMDataModule(dataset, batch_size=20, bptt=35, eval_batch_size=10, prepared_dir=str(tmp_path))
    files = resolve(dataset)
    for split, backward in (("train", False), ("test", False), ("test", True)):
        stream = encode_stream(dm.tokenizer, read_lines(files[split]), backward)
        assert dm.prepared(split).stats("stream")["words"] == count_words(read_lines(files[split]))
        pad, (batch_size, world) = split != "train", ((20, 2) if split == "train" else (10, 1))
        for rank in range(world):
            data, mask = batchify(stream, batch_size, rank, world, pad=pad)
            shard = StreamShard(dm.prepared(split), "stream", batch_size, rank, world, pad=pad, backward=backward)
            windows = list(BPTTSampler(shard.width, 35))
            assert shard.width == data.size(1)
            for start, length in windows[:30] + windows[-3:]:
                batch = StreamWindows(shard, 35)[(start, length)]
                assert torch.equal(batch.input, data[:, start: start + length])
                assert torch.equal(batch.target, data[:, start + 1: start + 1 + length])
                assert torch.equal(batch.mask, mask[:, start + 1: start + 1 + length])


@pytest.mark.real_data
def test_real_sst2_and_multi30k_batches_are_unchanged(real_data: Path, tmp_path: Path) -> None:
    dm = ClassificationDataModule("sst2", prepared_dir=str(tmp_path))
    for split in ("train", "test"):
        cached = dm.load_split(split)
        texts = dm._splits[split].texts
        memory = LabeledTexts(dm.reading.encode(dm.tokenizer, texts), cached.labels)
        assert np.array_equal(memory.lengths, cached.lengths) and np.array_equal(memory.flat, cached.flat)
        rows = list(range(0, len(texts), max(1, len(texts) // 64)))
        assert torch.equal(memory[rows].text, cached[rows].text)
    mt = TranslationDataModule("multi30k", prepared_dir=str(tmp_path))
    files = resolve_parallel("multi30k", "de", "en")
    for split in ("train", "test"):
        cached = mt.load_split(split).corpus
        src, trg = (read_lines(path) for path in files[split])
        keep = cached.lines.tolist()
        src_ids, _ = mt.reading.encode(mt.tokenizer, [src[i] for i in keep])
        memory = ParallelCorpus(src_ids, mt.tokenizer.encode([trg[i] for i in keep]), cached.lines)
        rows = list(range(0, len(keep), 97))
        for name in ("src", "trg_in", "trg_out", "trg_mask"):
            assert torch.equal(getattr(memory[rows], name), getattr(cached[rows], name))
    with pytest.raises(ConfigError):
        ClassificationDataModule("sst2", max_tokens=0)
