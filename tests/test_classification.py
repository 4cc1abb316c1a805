"""Classification: data reading and batching, the network, the task through the CLI, bundles, ULMFiT init."""

import dataclasses
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import seq2text
from seq2text.cli import main
from seq2text.data.batches import ClassificationBatch
from seq2text.data.catalog import CATALOG, resolve
from seq2text.data.classification import (
    ClassificationDataModule,
    LabeledTexts,
    TokenBudgetSampler,
    encode_texts,
    read_labeled,
)
from seq2text.errors import ConfigError, DataError
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.tasks.classification import ClassificationTask
from seq2text.tasks.config import ClassifierNetwork, FineTuning, Optimization
from seq2text.text.tokenizer import EOS_ID
from seq2text.text.vectors import load_word_vectors
from tests.conftest import REPO, TINY_CLS, TINY_LM, fit, run_fit, toy_rows


@pytest.fixture(scope="module")
def toy_sst(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SST-2-named toy files (train.tsv, dev.tsv, test_labeled.tsv) plus plain LM text files."""
    root = tmp_path_factory.mktemp("toy_sst")
    for name, n, seed in (("train", 300, 0), ("dev", 40, 1)):
        body = "".join(f"{text} \t{label}\n" for text, label in toy_rows(n, seed))
        (root / f"{name}.tsv").write_text("sentence\tlabel\n" + body)
    test = "".join(f"{i}\t{t}\t{lab}\n" for i, (t, lab) in enumerate(toy_rows(50, 2)))
    (root / "test_labeled.tsv").write_text("index\tsentence\tlabel\n" + test)
    for split, n, seed in (("train", 400, 3), ("valid", 40, 4), ("test", 40, 5)):  # LM text: other sentences
        (root / f"lm.{split}.txt").write_text("\n".join(t for t, _ in toy_rows(n, seed)) + "\n")
    return root


# ----------------------------------------------------------------------------------------------- reading
def test_read_tsv_and_quoted_csv(tmp_path: Path) -> None:
    tsv = tmp_path / "a.tsv"
    tsv.write_text('sentence\tlabel\n"quoted" text , kept \t1\nsecond\t0\n\n')
    assert read_labeled(tsv, "sentence") == (['"quoted" text , kept', "second"], ["1", "0"])
    csv_file = tmp_path / "b.csv"
    csv_file.write_text('id,label,text\n1,pos,"a, b\nc"\n2,neg,plain\n')
    assert read_labeled(csv_file) == (["a, b c", "plain"], ["pos", "neg"])


@pytest.mark.parametrize(("content", "kwargs", "match"), [
    (b"sentence\tlabel\nok\t1\n\t0\n", {}, r"line 3: empty text"),
    (b"sentence\tlabel\nok\t1\nbad\xff\t0\n", {}, r"line 3: invalid UTF-8"),
    (b"sentence\tlabel\nok\t1\ntab\tinside\t0\n", {}, r"line 3: 3 fields"),
    (b"sentence\tpolarity\nok\t1\n", {}, r"no column 'label'.*label_column"),
    (b"", {}, r"empty"),
])
def test_bad_files_name_the_file_and_line(tmp_path: Path, content: bytes, kwargs: dict, match: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as error:
        read_labeled(path, "sentence", **kwargs)
    assert str(path) in str(error.value)


def test_data_module_labels_holdout_and_unknown_labels(tmp_path: Path) -> None:
    rows = [(f"{w} thing {i}", lab) for i in range(40) for w, lab in (("up", "pos"), ("meh", "neu"), ("down", "neg"))]
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    test = tmp_path / "test.csv"
    test.write_text("text,label\nup thing,pos\ndown thing,neg\n")
    dm = ClassificationDataModule(dataset=None, train_file=str(train), test_file=str(test), tokenizer_type="word",
                                  tokenizer_vocab_size=None, valid_fraction=0.1)
    assert dm.labels == ["neg", "neu", "pos"] and dm.num_classes == 3 and dm.vocab_size > 4
    assert len(dm.load_split("valid")) == 12 and len(dm.load_split("train")) == 108  # held out of train
    assert dm.bundle_config()["labels"] == ["neg", "neu", "pos"]
    test.write_text("text,label\nup thing,pos\nodd thing,weird\n")
    with pytest.raises(DataError, match=r"test.csv, row 2 after the header: label 'weird'"):
        dm.load_split("test")
    with pytest.raises(ConfigError, match="not a classification dataset"):
        ClassificationDataModule(dataset="ptb")


def test_tokenizer_extra_text_gives_unseen_words_ids_and_vectors(tmp_path: Path) -> None:
    """Words of in-domain text (here a vector file's word list) that the labeled data lacks get their own ids,
    and the classifier's embedding takes their vectors."""
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in toy_rows(60, 0)))
    words = tmp_path / "words.txt"
    words.write_text("stellar\ndreadful\n")
    options = dict(dataset=None, train_file=str(train), test_file=str(train), tokenizer_type="word",
                   tokenizer_vocab_size=None)
    plain = ClassificationDataModule(**options)
    extended = ClassificationDataModule(**options, tokenizer_extra_text=[str(words)])
    assert plain.tokenizer.encode(["stellar"])[0][-1] == 1  # <unk>
    assert extended.vocab_size == plain.vocab_size + 2
    stellar = extended.tokenizer.encode(["stellar"])[0][-1]
    assert stellar > 3
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 3\nstellar 0.5 0.25 -1\ndreadful 1 2 3\n")
    task = ClassificationTask(vocab_size=extended.vocab_size, num_classes=2,
                              network=ClassifierNetwork(emb_size=3, hidden_size=4), word_vectors=str(vectors))
    task.trainer = SimpleNamespace(datamodule=extended)
    task.setup("fit")
    assert task.net.embedding.weight[stellar].tolist() == [0.5, 0.25, -1.0]
    with pytest.raises(ConfigError, match="cannot go with data.tokenizer_model"):
        ClassificationDataModule(**options, tokenizer_model="x.model", tokenizer_extra_text=[str(words)])
    with pytest.raises(DataError, match="missing.txt does not exist"):
        ClassificationDataModule(**options, tokenizer_extra_text=[str(tmp_path / "missing.txt")])


def test_encode_texts_truncates_and_starts_with_eos() -> None:
    words = " ".join(f"w{i}" for i in range(10))

    class Fake:  # a tokenizer whose ids are the word numbers + 10
        def encode(self, texts: list[str]) -> list[list[int]]:
            return [[int(w[1:]) + 10 for w in t.split()] for t in texts]

    assert encode_texts(Fake(), [words, ""], 5, "head") == [[EOS_ID, 10, 11, 12, 13], [EOS_ID]]
    assert encode_texts(Fake(), [words], 5, "tail")[0] == [EOS_ID, 16, 17, 18, 19]
    assert encode_texts(Fake(), [words], 6, "head_tail")[0] == [EOS_ID, 10, 11, 12, 18, 19]


# ----------------------------------------------------------------------------------------------- batching
def test_training_batches_respect_the_budget_and_are_equal_per_rank() -> None:
    lengths = np.random.default_rng(0).integers(1, 40, size=503)
    counts = set()
    for world in (1, 2, 3):
        for rank in range(world):
            sampler = TokenBudgetSampler(lengths, 200, 16, shuffle=True, seed=1, rank=rank, world_size=world)
            for epoch in (0, 1):
                sampler.set_epoch(epoch)
                batches = list(sampler)
                assert len(batches) == len(sampler)
                assert all(len(b) * lengths[b].max() <= 200 and len(b) <= 16 for b in batches)
            counts.add((world, len(sampler)))
        assert len({c for w, c in counts if w == world}) == 1
    first = TokenBudgetSampler(lengths, 200, shuffle=True, seed=1)
    epoch0 = list(first)
    first.set_epoch(1)
    assert epoch0 != list(first) and sorted(sum(epoch0, [])) == list(range(503))


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_evaluation_sees_every_text_once_across_ranks(world: int) -> None:
    lengths = np.random.default_rng(1).integers(1, 30, size=37)
    seen, sizes = [], set()
    for rank in range(world):
        batches = list(TokenBudgetSampler(lengths, 120, rank=rank, world_size=world))
        sizes.add(len(batches))
        seen += [i for b in batches for i in b if i >= 0]
    assert sorted(seen) == list(range(37)) and len(sizes) == 1
    data = LabeledTexts([[EOS_ID] * int(n) for n in lengths], np.zeros(37, dtype=np.int64))
    filler = data[[-1]]
    assert filler.real.tolist() == [False] and filler.text.shape == (1, lengths[0])


# ----------------------------------------------------------------------------------------------- network
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention", "concat"])
@pytest.mark.parametrize(("rnn_type", "bidirectional"), [("lstm", True), ("gru", False)])
def test_pooling_shapes_and_batch_independence(pooling: str, rnn_type: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    config = ClassifierConfig(30, 3, 8, 6, 2, rnn_type, bidirectional, pooling=pooling, head_sizes=(5,))
    net = RNNClassifier(config).eval()
    lengths = torch.tensor([9, 3, 1, 7])
    text = torch.randint(4, 30, (4, 9)) * (torch.arange(9) < lengths[:, None])
    assert net(text, lengths).shape == (4, 3)
    width = {"concat": 3}.get(pooling, 1) * 6 * (2 if bidirectional else 1)
    assert net.features(text, lengths).shape == (4, width)
    alone = torch.cat([net(text[i: i + 1, : lengths[i]], lengths[i: i + 1]) for i in range(4)])
    assert torch.allclose(net(text, lengths), alone, atol=1e-5)


def test_chunked_reading_equals_whole_reading_and_bounds_the_graph() -> None:
    torch.manual_seed(0)
    text, lengths = torch.arange(4, 73).view(3, 23), torch.tensor([23, 11, 5])  # every id once
    net = RNNClassifier(ClassifierConfig(80, 2, 8, 6, 2, "lstm", False, output_size=8)).eval()
    whole = net(text, lengths)
    net.bptt, net.max_grad_len = 4, 8
    assert torch.allclose(whole, net(text, lengths), atol=1e-6)
    net.train()
    net(text, lengths).sum().backward()
    assert net.embedding.weight.grad[text[0, :12]].abs().sum() == 0  # chunks before the last 8 tokens: no graph
    assert net.embedding.weight.grad[text[0, -4:]].abs().sum() > 0


def test_frozen_embedding_keeps_the_word_vectors_while_the_rest_trains(toy_sst: Path, tmp_path: Path) -> None:
    words = sorted({w for text, _ in toy_rows(300, 0) for w in text.split()})
    vectors = tmp_path / "vectors.txt"
    values = torch.randn(len(words), 16, generator=torch.Generator().manual_seed(0)).tolist()
    rows = (f"{w} " + " ".join(f"{v:.4f}" for v in row) for w, row in zip(words, values, strict=True))
    vectors.write_text("\n".join(rows) + "\n")
    assert run_fit("sst2_bilstm.yaml", tmp_path, "--data.init_args.root", str(toy_sst), *TINY_CLS,
                   "--trainer.max_epochs", "8",
                   "--model.init_args.optim.lr", "0.01", "--model.init_args.optim.warmup_steps", "0",
                   "--model.init_args.word_vectors", str(vectors),
                   "--model.init_args.fine_tuning.embedding_lr_scale", "0") == 0
    bundle = tmp_path / "bundle"
    weights = load_file(str(bundle / "model.safetensors"))
    expected, found = load_word_vectors(vectors, seq2text.load(bundle).tokenizer.pieces(), 16)
    assert int(found.sum()) == len(words)
    assert torch.equal(weights["embedding.weight"][found], expected[found])
    assert json.loads((bundle / "metrics.json").read_text())["test/acc"] >= 0.8  # the rest learned
    with pytest.raises(ConfigError, match="embedding_lr_scale=1.5 lies in"):
        ClassificationTask(100, num_classes=2, fine_tuning=FineTuning(embedding_lr_scale=1.5))


def test_word_vectors_glove_and_word2vec(tmp_path: Path) -> None:
    pieces = ["<pad>", "<unk>", "<s>", "</s>", "\u2581the", "\u2581Cat", "ing", "\u2581zzz"]
    glove = tmp_path / "glove.txt"
    glove.write_text("the 1 2 3\ncat 4 5 6\ning 7 8 9\nnew york 1 1 1\n")
    vectors, found = load_word_vectors(glove, pieces, 3)
    assert found.tolist() == [False] * 4 + [True, True, True, False]
    assert vectors[5].tolist() == [4, 5, 6]  # lowercase fallback
    w2v = tmp_path / "vec.txt"
    w2v.write_text("2 3\nCat 9 9 9\ncat 4 5 6\n")
    assert load_word_vectors(w2v, pieces, 3)[0][5].tolist() == [9, 9, 9]  # the exact form wins
    with pytest.raises(DataError, match="emb_size is 4"):
        load_word_vectors(glove, pieces, 4)


# ----------------------------------------------------------------------------------------------- task + CLI
@pytest.fixture(scope="module")
def scratch_bundle(toy_sst: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit_cls")
    assert run_fit("sst2_bilstm.yaml", out, "--data.init_args.root", str(toy_sst), *TINY_CLS, "--trainer.max_epochs",
                   "8",
                   "--model.init_args.optim.lr", "0.01", "--model.init_args.optim.warmup_steps", "0") == 0
    return out / "bundle"


def test_fit_learns_and_the_bundle_predicts_like_the_test_run(scratch_bundle: Path, toy_sst: Path) -> None:
    metrics = json.loads((scratch_bundle / "metrics.json").read_text())
    assert {"val/acc", "val/f1", "test/acc", "test/f1", "test/confusion/0->1"} <= set(metrics)
    assert metrics["test/examples"] == 50 and metrics["test/acc"] >= 0.9  # the toy label is one sentiment word
    classifier = seq2text.load(scratch_bundle)
    assert isinstance(classifier, seq2text.Classifier) and classifier.labels == ["0", "1"]
    texts, labels = read_labeled(toy_sst / "test_labeled.tsv", "sentence")
    predicted = classifier.predict(texts)
    assert np.mean([p == t for p, t in zip(predicted, labels, strict=True)]) == pytest.approx(metrics["test/acc"])
    confusion = sum(p == "1" and t == "0" for p, t in zip(predicted, labels, strict=True))
    assert confusion == metrics["test/confusion/0->1"]
    proba = classifier.predict_proba(["a good film", ""])  # "" → the start token alone
    assert set(proba[0]) == {"0", "1"} and sum(proba[1].values()) == pytest.approx(1.0)
    assert classifier.predict([]) == []
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        classifier.predict(["fine", 3])
    with pytest.raises(seq2text.BundleError, match="not a language_model"):
        seq2text.LanguageModel.load(scratch_bundle)


def test_classify_command_streams_stdin(scratch_bundle: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a good film\n\nawful\nfun\n")))
    assert main(["classify", "--model", str(scratch_bundle), "--batch-lines", "3"]) == 0
    assert capsys.readouterr().out.split("\n") == [*seq2text.load(scratch_bundle).predict(
        ["a good film", "", "awful", "fun"]), ""]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff\n")))
    assert main(["classify", "--model", str(scratch_bundle), "--batch-lines", "1"]) == 1
    assert "stdin, line 2: invalid UTF-8" in capsys.readouterr().err


def test_classification_scores_match_torchmetrics() -> None:
    from torchmetrics.functional.classification import multiclass_f1_score

    from seq2text.predict.metrics import classification_scores

    labels = ["neg", "neu", "pos", "none"]  # "none" is neither predicted nor present: left out of macro-F1
    gold = ["neg", "neg", "pos", "neu", "pos", "pos", "neu"]
    predicted = ["neg", "pos", "pos", "neu", "neg", "pos", "pos"]
    scores = classification_scores(predicted, gold, labels)
    index = {label: i for i, label in enumerate(labels)}
    expected = multiclass_f1_score(torch.tensor([index[p] for p in predicted]), torch.tensor([index[g] for g in gold]),
                                   num_classes=4, average="macro")
    assert scores["acc"] == pytest.approx(4 / 7) and scores["f1"] == pytest.approx(expected.item())
    assert scores["confusion"]["neu->pos"] == 1 and scores["confusion"]["pos->pos"] == 2 and scores["examples"] == 7
    with pytest.raises(DataError, match="2 predictions for 1 gold labels"):
        classification_scores(["neg", "pos"], ["neg"], labels)


def test_evaluate_command_scores_a_labeled_file(scratch_bundle: Path, toy_sst: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    metrics = json.loads((scratch_bundle / "metrics.json").read_text())
    assert main(["evaluate", "--model", str(scratch_bundle), "--input", str(toy_sst / "test_labeled.tsv")]) == 0
    scores = json.loads(capsys.readouterr().out)  # columns default to the training ones ("sentence", "label")
    assert scores["examples"] == 50 and scores["acc"] == pytest.approx(metrics["test/acc"])
    assert scores["f1"] == pytest.approx(metrics["test/f1"], abs=1e-6)
    assert scores["confusion"]["0->1"] == metrics["test/confusion/0->1"]
    bad = toy_sst.parent / "three_labels.tsv"
    bad.write_text("sentence\tlabel\na good film\t1\nso so\t2\n")
    assert main(["evaluate", "--model", str(scratch_bundle), "--input", str(bad)]) == 1
    assert "gold labels ['2'] are not among the model's labels ['0', '1']" in capsys.readouterr().err


@pytest.fixture(scope="module")
def second_bundle(toy_sst: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit_cls_seed")
    assert run_fit("sst2_bilstm.yaml", out, "--data.init_args.root", str(toy_sst), *TINY_CLS, "--trainer.max_epochs",
                   "2", "--seed_everything",
                   "7", "--model.init_args.network.rnn_type", "gru", "--model.init_args.optim.lr", "0.01") == 0
    return out / "bundle"


def test_ensemble_averages_member_probabilities(scratch_bundle: Path, second_bundle: Path, toy_sst: Path,
                                                lm_bundle: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    ensemble = seq2text.load([scratch_bundle, second_bundle])
    assert isinstance(ensemble, seq2text.ClassifierEnsemble) and ensemble.labels == ["0", "1"]
    texts, gold = read_labeled(toy_sst / "test_labeled.tsv", "sentence")
    first, second = (seq2text.load(path).probabilities(texts) for path in (scratch_bundle, second_bundle))
    assert not torch.allclose(first, second)
    assert torch.allclose(ensemble.probabilities(texts), (first + second) / 2)
    assert ensemble.predict(texts) == [ensemble.labels[i] for i in ((first + second) / 2).argmax(-1).tolist()]
    assert main(["evaluate", "--model", str(scratch_bundle), str(second_bundle), "--input",
                 str(toy_sst / "test_labeled.tsv")]) == 0
    assert json.loads(capsys.readouterr().out)["acc"] == pytest.approx(ensemble.evaluate(texts, gold)["acc"])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a good film\nawful\n")))
    assert main(["classify", "--model", str(scratch_bundle), str(second_bundle)]) == 0
    assert capsys.readouterr().out.split("\n") == [*ensemble.predict(["a good film", "awful"]), ""]
    with pytest.raises(seq2text.BundleError, match="ensemble member 1: .* holds a language_model model"):
        seq2text.load([scratch_bundle, lm_bundle])
    other = seq2text.load(second_bundle)
    other.labels = ["neg", "pos"]
    with pytest.raises(seq2text.BundleError, match=r"member 1 predicts labels \['neg', 'pos'\]"):
        seq2text.ClassifierEnsemble([seq2text.load(scratch_bundle), other])
    with pytest.raises(TypeError, match="a list of bundle directories"):
        seq2text.ClassifierEnsemble.load(str(scratch_bundle))


def test_distillation_from_the_ensembles_probabilities(scratch_bundle: Path, second_bundle: Path, toy_sst: Path,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    """`classify --proba` of the ensemble on the training texts → data.train_soft_targets → a student trained
    on them (sst2_distill's road, on toy data)."""
    texts, _ = read_labeled(toy_sst / "train.tsv", "sentence")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(texts) + "\n").encode())))
    assert main(["classify", "--model", str(scratch_bundle), str(second_bundle), "--proba"]) == 0
    soft = tmp_path / "soft.jsonl"
    soft.write_text(capsys.readouterr().out)
    teacher = seq2text.load([scratch_bundle, second_bundle]).probabilities(texts)
    dm = ClassificationDataModule(dataset="sst2", root=str(toy_sst), train_soft_targets=str(soft),
                                  tokenizer_type="word", tokenizer_vocab_size=None)
    batch = dm.load_split("train")[[5, 0, 17]]
    assert torch.allclose(batch.soft, teacher[[5, 0, 17]], atol=1e-6)  # in class-index order, row-aligned
    assert dm.load_split("valid")[[0]].soft is None
    out = tmp_path / "student"
    assert run_fit("sst2_bilstm.yaml", out, "--data.init_args.root", str(toy_sst),
                   "--data.init_args.train_soft_targets", str(soft),
                   "--model.init_args.fine_tuning.soft_target_weight", "0.7",
                   *TINY_CLS, "--trainer.max_epochs", "8", "--model.init_args.optim.lr", "0.01",
                   "--model.init_args.optim.warmup_steps", "0") == 0
    test = read_labeled(toy_sst / "test_labeled.tsv", "sentence")
    assert seq2text.load(out / "bundle").evaluate(*test)["acc"] >= 0.9  # as the teachers (the toy label is one word)


def test_soft_targets_follow_the_hold_out_and_bad_files_are_refused(tmp_path: Path) -> None:
    rows = [(f"{w} thing {i}", lab) for i in range(20) for w, lab in (("up", "pos"), ("down", "neg"))]
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    test.write_text("text,label\nup thing,pos\ndown thing,neg\n")
    soft = tmp_path / "soft.jsonl"
    soft.write_text("".join(json.dumps({"pos": i / 40, "neg": 1 - i / 40}) + "\n" for i in range(40)))
    options = {"dataset": None, "train_file": str(train), "test_file": str(test), "tokenizer_type": "word",
               "tokenizer_vocab_size": None, "valid_fraction": 0.25}
    dm = ClassificationDataModule(**options, train_soft_targets=str(soft))
    kept = dm._train_rows
    data = dm.load_split("train")
    assert len(data) == 30 and len(kept) == 30
    assert torch.allclose(data[list(range(30))].soft, torch.tensor([[1 - i / 40, i / 40] for i in kept]))  # neg, pos
    row = json.dumps({"pos": 0.5, "neg": 0.5})
    for content, match in (("".join(row + "\n" for _ in range(39)), "has 39 rows but the training file"),
                           (row.replace("neg", "bad") + "\n", "are not the training labels"),
                           ('{"pos": 0.9, "neg": 0.3}\n', "is not a probability distribution"),
                           ("{pos: 1}\n", "line 1: not JSON")):
        soft.write_text(content)
        with pytest.raises(DataError, match=match):
            ClassificationDataModule(**options, train_soft_targets=str(soft)).load_split("train")
    with pytest.raises(DataError, match="does not exist; write it with seq2text classify"):
        ClassificationDataModule(**options, train_soft_targets=str(tmp_path / "missing.jsonl"))


def test_soft_targets_of_the_gold_labels_give_the_plain_loss() -> None:
    task = ClassificationTask(vocab_size=30, num_classes=3, network=ClassifierNetwork(8, 8, 1))
    text, lengths = torch.randint(4, 30, (4, 6)), torch.tensor([6, 5, 3, 2])
    labels, indices = torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1, 2, -1])
    task.log = lambda *args, **kwargs: None
    task.eval()
    plain = task.training_step(ClassificationBatch(text, lengths, labels, indices), 0)
    one_hot = F.one_hot(labels, 3).float()
    assert torch.allclose(task.training_step(ClassificationBatch(text, lengths, labels, indices, one_hot), 0), plain)
    flat = ClassificationBatch(text, lengths, labels, indices, torch.full((4, 3), 1 / 3))
    assert not torch.allclose(task.training_step(flat, 0), plain)
    with pytest.raises(ConfigError, match="soft_target_weight=1.5 lies in"):
        ClassificationTask(vocab_size=30, num_classes=3, fine_tuning=FineTuning(soft_target_weight=1.5))


def test_label_mismatch_is_a_clear_error(toy_sst: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = run_fit("sst2_bilstm.yaml", tmp_path, "--data.init_args.root", str(toy_sst), *TINY_CLS,
                   "--trainer.fast_dev_run", "true",
                   "--model.init_args.num_classes", "3")
    assert code == 1 and "model.num_classes=3 but the training data has 2 labels" in capsys.readouterr().err


def test_encoder_starts_from_the_lm_bundle(lm_bundle: Path) -> None:
    lm = load_file(str(lm_bundle / "model.safetensors"))
    vocab = lm["embedding.weight"].size(0)
    task = ClassificationTask(vocab, num_classes=2, pretrained_lm=str(lm_bundle),
                              fine_tuning=FineTuning(discriminative_lr=2.6))
    assert task.net.config.bidirectional is False and task.net.config.output_size == 16
    for key in ("embedding.weight", "rnn.layers.0.rnn.weight_ih_l0", "rnn.layers.1.rnn.weight_hh_l0"):
        assert torch.equal(task.net.state_dict()[key], lm[key])
    with pytest.raises(ConfigError, match="hidden_size=32 but the LM has 24"):
        ClassificationTask(vocab, num_classes=2, pretrained_lm=str(lm_bundle),
                           network=ClassifierNetwork(hidden_size=32))
    with pytest.raises(ConfigError, match="tokenizer_model"):
        ClassificationTask(vocab + 1, num_classes=2, pretrained_lm=str(lm_bundle))


def test_discriminative_lr_and_gradual_unfreezing(lm_bundle: Path) -> None:
    vocab = load_file(str(lm_bundle / "model.safetensors"))["embedding.weight"].size(0)
    task = ClassificationTask(vocab, num_classes=2, pretrained_lm=str(lm_bundle),
                              fine_tuning=FineTuning(2.0, gradual_unfreezing=True, unfreeze_interval=0.5),
                              optim=Optimization("adamw", 0.01, 0.01, lr_schedule="constant"))
    optimizer = task.configure_optimizers()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01 / 8, 0.01 / 4, 0.01 / 2, 0.01])
    task.trainer = SimpleNamespace(optimizers=[optimizer], current_epoch=0, num_training_batches=10, global_step=0,
                                   world_size=1, callbacks=[], estimated_stepping_batches=100,
                                   accumulate_grad_batches=1)
    task.on_train_batch_start(None, 0)
    assert [g["lr"] for g in optimizer.param_groups] == [0, 0, 0, 0.01]
    assert not task.net.embedding.weight.requires_grad and all(p.requires_grad for p in task.net.head.parameters())
    task.trainer.global_step = 5  # half an epoch later (counted in optimizer steps): one more group
    task.on_train_batch_start(None, 5)
    assert [g["lr"] > 0 for g in optimizer.param_groups] == [False, False, True, True]
    task.trainer.global_step = 20
    task.on_train_batch_start(None, 0)
    assert all(g["lr"] > 0 for g in optimizer.param_groups) and task.net.embedding.weight.requires_grad


def test_ulmfit_recipe_fine_tunes_and_checks_the_tokenizer(lm_bundle: Path, toy_sst: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    lm = ["--model.init_args.pretrained_lm", str(lm_bundle), "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false", "--trainer.fast_dev_run", "true"]
    assert run_fit("sst2_ulmfit.yaml", tmp_path / "ok", "--data.init_args.root", str(toy_sst), *lm,
                   "--data.init_args.tokenizer_model",
                   str(lm_bundle / "tokenizer.model")) == 0
    assert seq2text.load(tmp_path / "ok" / "bundle").predict(["a good film"])[0] in ("0", "1")
    capsys.readouterr()
    code = run_fit("sst2_ulmfit.yaml", tmp_path / "bad", "--data.init_args.root", str(toy_sst), *lm,
                   "--data.init_args.tokenizer_model", "null",
                   "--data.init_args.tokenizer_type", "word", "--data.init_args.tokenizer_vocab_size", "null")
    assert code == 1 and f"set data.tokenizer_model to {lm_bundle}/tokenizer.model" in capsys.readouterr().err


def test_classifier_from_a_backward_lm_reads_backward(toy_sst: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    files = [f"--data.init_args.{s}_file={toy_sst / f'lm.{s}.txt'}" for s in ("train", "valid", "test")]
    fit("ptb_lstm_small.yaml", tmp_path / "lm", "--data.init_args.dataset", "null", *files,
        "--data.init_args.backward", "true", *TINY_LM, "--trainer.max_epochs", "1")
    lm = ["--model.init_args.pretrained_lm", str(tmp_path / "lm" / "bundle"), "--data.init_args.tokenizer_model",
          str(tmp_path / "lm" / "bundle" / "tokenizer.model"), "--trainer.enable_progress_bar", "false",
          "--trainer.max_epochs", "1"]
    capsys.readouterr()
    assert run_fit("sst2_ulmfit.yaml", tmp_path / "fwd", "--data.init_args.root", str(toy_sst), *lm) == 1
    assert "is a backward language model but data.backward is false" in capsys.readouterr().err
    assert run_fit("sst2_ulmfit.yaml", tmp_path / "bwd", "--data.init_args.root", str(toy_sst), *lm,
                   "--data.init_args.backward", "true") == 0
    classifier = seq2text.load(tmp_path / "bwd" / "bundle")
    texts = ["a good film", "the plot was dull and very poor", ""]
    as_forward = seq2text.Classifier(classifier.net, classifier.tokenizer,
                                     dataclasses.replace(classifier.reading, backward=False))
    reversed_texts = [" ".join(reversed(text.split())) for text in texts]
    assert classifier.backward and torch.allclose(classifier.probabilities(texts),
                                                  as_forward.probabilities(reversed_texts))
    metrics = json.loads((tmp_path / "bwd" / "bundle" / "metrics.json").read_text())
    test_texts, gold = read_labeled(toy_sst / "test_labeled.tsv", "sentence")
    assert classifier.evaluate(test_texts, gold)["acc"] == pytest.approx(metrics["test/acc"])


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")
                                          if p.name.startswith(("sst2", "imdb")) and "rating" not in p.name))
def test_recipes_parse(recipe: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(REPO / "recipes" / recipe), "--print_config"])
    assert done.value.code in (0, None) and "ClassificationTask" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_sst2_and_imdb_counts(real_data: Path) -> None:
    expected = {"sst2": {"train": (67349, {"1": 37569, "0": 29780}), "valid": (872, {"1": 444, "0": 428}),
                         "test": (1821, {"1": 909, "0": 912})},
                "imdb": {"train": (25000, {"1": 12500, "0": 12500}), "test": (25000, {"1": 12500, "0": 12500})}}
    for name, splits in expected.items():
        spec = CATALOG[name]
        files = resolve(name, splits=tuple(splits), allow_hub=False)
        assert all(str(path).startswith(str(real_data)) for path in files.values())
        for split, (rows, counts) in splits.items():
            texts, labels = read_labeled(files[split], spec.text_column, spec.label_column)
            assert len(texts) == rows, (name, split)
            assert {lab: labels.count(lab) for lab in set(labels)} == counts, (name, split)
