"""Translation: catalog, data module and sampler, attention, search, metrics, task, bundle, Translator, CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import seq2text
from seq2text.cli import main
from seq2text.data.catalog import resolve, resolve_parallel
from seq2text.data.translation import PairBatchSampler, TranslationDataModule, read_parallel
from seq2text.errors import BundleError, ConfigError, DataError
from seq2text.nn.attention import make_attention
from seq2text.nn.ensemble import Seq2SeqEnsemble
from seq2text.nn.search import ContinuousBeamSearch, SearchConfig, beam_search, greedy_search, max_lengths
from seq2text.nn.seq2seq import FeedingCell, Seq2Seq, Seq2SeqConfig
from seq2text.predict.metrics import bleu, chrf, reference_streams, ter, translation_scores
from tests.conftest import REPO, TINY_MT, fit, toy_pairs, write_pairs

FILES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}

@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy machine waiting for them costs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_mt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with Multi30k- and IWSLT-named toy files."""
    root = tmp_path_factory.mktemp("toy_mt")
    for split, n, seed in (("train", 300, 0), ("valid", 25, 1), ("test", 25, 2)):
        write_pairs(root, FILES[split], toy_pairs(n, seed))
        write_pairs(root, split, toy_pairs(n, seed))  # iwslt14: train / valid / test
    return root


@pytest.fixture(scope="module")
def toy_dm(toy_mt: Path) -> TranslationDataModule:
    return TranslationDataModule("multi30k", root=str(toy_mt), tokenizer_vocab_size=100, max_tokens=120)


@pytest.fixture(scope="module")
def toy_bundle(toy_mt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mt_fit")
    return fit("multi30k_bigru_attention.yaml", out, "--data.init_args.root", str(toy_mt), *TINY_MT,
               "--model.init_args.optim.lr", "0.01", "--trainer.max_epochs", "3",
               "--trainer.precision", "32")  # the Translator decodes in float32: its BLEU must match exactly


def sharp_model(rnn_type: str, attention: str, eos_bias: float, seed: int) -> Seq2Seq:
    """A seeded random model with peaked output distributions (no near-ties) that ends sentences at
    different lengths (the seeds and eos biases are picked for that)."""
    torch.manual_seed(seed)
    model = Seq2Seq(Seq2SeqConfig(20, 16, 24, rnn_type=rnn_type, attention=attention, tie_weights="decoder"))
    with torch.no_grad():
        model.embedding.weight.mul_(30.0)
        model.out_bias[3] += eos_bias
    return model.eval()


def random_batch(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 9, (batch,), generator=gen)
    src = torch.randint(4, 20, (batch, int(lengths.max())), generator=gen)
    src[torch.arange(src.size(1)) >= lengths.unsqueeze(1)] = 0
    return src, lengths


# ----------------------------------------------------------------------------------------------- data
def test_catalog_resolves_parallel_files(toy_mt: Path, tmp_path: Path) -> None:
    files = resolve_parallel("multi30k", "de", "en", root=toy_mt)
    assert files["valid"] == (toy_mt / "val.de", toy_mt / "val.en")
    assert files["test"][1] == toy_mt / "test_2016_flickr.en"
    assert resolve_parallel("iwslt14", "en", "de", root=toy_mt)["valid"] == (toy_mt / "valid.en", toy_mt / "valid.de")
    with pytest.raises(DataError, match="no 'fr' side"):
        resolve_parallel("multi30k", "fr", "en", root=toy_mt)
    with pytest.raises(DataError, match="translation dataset"):
        resolve("multi30k")
    with pytest.raises(DataError, match=r"train\.de.*SEQ2TEXT_DATA"):
        resolve_parallel("multi30k", "de", "en", root=tmp_path)


def test_batches_follow_the_contract(toy_dm: TranslationDataModule) -> None:
    assert toy_dm.vocab_size == toy_dm.tokenizer.vocab_size == 100
    assert {"src_lang", "trg_lang", "max_src_len"} <= set(toy_dm.bundle_config())
    seen = []
    for batch in toy_dm.train_dataloader():
        assert (batch.trg_in[:, 0] == 2).all()
        assert batch.src.size(0) * max(batch.src.size(1), batch.trg_in.size(1)) <= 120  # the token budget
        rows = torch.arange(batch.src.size(0))
        assert (batch.trg_out[rows, batch.trg_mask.sum(1) - 1] == 3).all()  # eos ends every target
        assert (batch.src[rows, batch.src_lengths - 1] == 3).all()  # ... and every source
        assert torch.equal(batch.trg_in[:, 1:][batch.trg_mask[:, 1:]], batch.trg_out[:, :-1][batch.trg_mask[:, 1:]])
        seen += batch.indices.tolist()
    assert sorted(seen) == list(range(300))  # one epoch: every pair once
    order = [b.indices.tolist() for b in toy_dm.train_dataloader()]
    loader = toy_dm.train_dataloader()
    loader.sampler.set_epoch(1)
    assert [b.indices.tolist() for b in loader] != order  # reshuffled per epoch
    valid = [i for b in toy_dm.val_dataloader() for i in b.indices.tolist()]
    assert sorted(valid) == list(range(25)) and len(toy_dm.references["valid"]) == 25
    first = next(iter(toy_dm.val_dataloader()))
    ref = toy_dm.references["valid"][int(first.indices[0])]
    assert toy_dm.tokenizer.decode([first.trg_out[0].tolist()])[0] == ref  # raw reference round trip


@pytest.mark.parametrize("world", [2, 3])
def test_sampler_gives_every_rank_the_same_number_of_batches(world: int) -> None:
    rng = np.random.default_rng(0)
    src, trg = rng.integers(1, 30, 101), rng.integers(1, 30, 101)
    train = [list(PairBatchSampler(src, trg, 200, shuffle=True, seed=3, rank=r, world_size=world))
             for r in range(world)]
    assert len({len(batches) for batches in train}) == 1
    flat = [i for batches in train for b in batches for i in b]
    assert len(flat) == len(set(flat))  # no pair on two ranks
    evaluation = [PairBatchSampler(src, trg, 200, rank=r, world_size=world) for r in range(world)]
    assert len({len(list(s)) for s in evaluation}) == 1 and len({len(s) for s in evaluation}) == 1
    assert sorted(i for s in evaluation for b in s for i in b) == list(range(101))  # each pair exactly once
    for batches in [list(s) for s in evaluation]:
        assert all(len(b) * max(max(src[b]), max(trg[b]) + 1) <= 200 for b in batches if len(b) > 1)


def test_bad_parallel_files(toy_mt: Path, tmp_path: Path) -> None:
    (tmp_path / "a.de").write_text("eins\nzwei\ndrei\n")
    (tmp_path / "a.en").write_text("one\ntwo\n")
    with pytest.raises(DataError, match=r"a\.de has 3 lines but .*a\.en has 2"):
        read_parallel(tmp_path / "a.de", tmp_path / "a.en")
    root = tmp_path / "gaps"
    pairs = toy_pairs(300, 0)
    pairs[5], pairs[9] = ("", pairs[5][1]), (pairs[9][0], "   ")
    pairs[11] = (" ".join(["hund"] * 40), pairs[11][1])
    write_pairs(root, "train", pairs)
    for split in ("valid", "test"):
        shutil.copy(toy_mt / f"{FILES[split]}.de", root / f"{FILES[split]}.de")
        shutil.copy(toy_mt / f"{FILES[split]}.en", root / f"{FILES[split]}.en")
    dm = TranslationDataModule("multi30k", root=str(root), tokenizer_vocab_size=100, max_len=30)
    train = dm.load_split("train")
    assert train.dropped == {"empty": 2, "longer_than_max_len": 1} and len(train.corpus) == 297
    assert len(train.references) == 300  # raw lines kept whole
    test_pairs = toy_pairs(25, 2)
    test_pairs[3] = (test_pairs[3][0], "")
    write_pairs(root, "test_2016_flickr", test_pairs)
    with pytest.raises(DataError, match=r"test_2016_flickr\.en, line 4 is empty"):
        dm.load_split("test")
    with pytest.raises(ConfigError, match="both 'de'"):
        TranslationDataModule("multi30k", root=str(root), trg_lang="de")
    with pytest.raises(ConfigError, match="data.train_src"):
        TranslationDataModule(None)


# ----------------------------------------------------------------------------------------------- nn
@pytest.mark.parametrize("kind", ["bahdanau", "luong_general", "luong_dot"])
def test_attention_ignores_padding(kind: str) -> None:
    torch.manual_seed(0)
    attention = make_attention(kind, 8, 8, 6)
    memory, query = torch.randn(3, 5, 8), torch.randn(3, 8)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [2], [1]])
    context, weights = attention(query, attention.project_keys(memory), memory, mask)
    assert context.shape == (3, 8) and weights.shape == (3, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(3)) and (weights[~mask] == 0).all()
    noisy = memory.masked_fill(~mask.unsqueeze(2), 1e3)  # garbage at padded positions changes nothing
    context2, _ = attention(query, attention.project_keys(noisy), noisy, mask)
    assert torch.equal(context, context2)


@pytest.mark.parametrize("kind", ["bahdanau", "luong_general", "luong_dot"])
def test_a_memory_row_serves_a_group_of_queries_as_its_copies_would(kind: str) -> None:
    torch.manual_seed(0)
    attention = make_attention(kind, 8, 8, 6)
    memory, query = torch.randn(3, 5, 8), torch.randn(3 * 4, 8)  # 3 sentences × 4 beams
    mask = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [2], [3]])
    keys = attention.project_keys(memory)
    context, weights = attention(query, keys, memory, mask)
    rows = torch.arange(3).repeat_interleave(4)  # each sentence's row copied for its beams
    copied_context, copied_weights = attention(query, keys[rows], memory[rows], mask[rows])
    assert context.shape == (12, 8) and weights.shape == (12, 5)
    assert torch.allclose(context, copied_context, atol=1e-6) and torch.allclose(weights, copied_weights, atol=1e-6)
    with pytest.raises(ValueError, match="equal groups"):
        attention(query[:11], keys, memory, mask)


def test_bahdanau_scores_decode_with_the_sigmoid_tanh_and_train_with_torch_tanh() -> None:
    torch.manual_seed(0)
    attention = make_attention("bahdanau", 8, 8, 6)
    keys, query = torch.randn(3, 5, 6) * 3, torch.randn(3 * 2, 8)
    exact = torch.matmul(torch.tanh(keys.unsqueeze(1) + attention.query_layer(query).view(3, 2, 1, 6)), attention.v)
    with torch.inference_mode():
        decoded = attention.score(query, keys)
    assert torch.allclose(decoded, exact, atol=1e-6)
    trained = attention.score(query, keys)  # with autograd: torch.tanh itself, and a gradient
    assert torch.equal(trained, exact) and trained.requires_grad
    trained.sum().backward()
    assert attention.v.grad is not None and torch.isfinite(attention.query_layer.weight.grad).all()


def test_decoding_output_weight_follows_the_weight() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(40, 8, 8, rnn_type="gru", attention="bahdanau", tie_weights="all")).eval()
    features = torch.randn(7, 8)

    def decoding() -> torch.Tensor:
        with torch.inference_mode():
            return model.logits(features)

    assert torch.allclose(decoding(), torch.nn.functional.linear(features, model.output_weight, model.out_bias),
                          atol=1e-6)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)  # fused: no version bump
    before = decoding()
    model.train()
    model(torch.randint(3, 40, (2, 4)), torch.tensor([4, 3]), torch.randint(3, 40, (2, 3))).sum().backward()
    optimizer.step()
    model.eval()
    after = decoding()
    assert not torch.allclose(before, after)
    assert torch.allclose(after, torch.nn.functional.linear(features, model.output_weight, model.out_bias), atol=1e-6)
    with torch.no_grad():  # a load in eval mode writes the weight in place
        model.load_state_dict({k: v * 0.5 for k, v in model.state_dict().items()})
    assert torch.allclose(decoding(), torch.nn.functional.linear(features, model.output_weight, model.out_bias),
                          atol=1e-6)


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_feeding_cell_matches_the_torch_cell(rnn_type: str) -> None:
    torch.manual_seed(0)
    emb, feed, hid = 5, 4, 6
    cell = FeedingCell(rnn_type, emb, feed, hid)
    x, f, h, c = torch.randn(3, emb), torch.randn(3, feed), torch.randn(3, hid), torch.randn(3, hid)
    if rnn_type == "lstm":
        ref = torch.nn.LSTMCell(emb + feed, hid)
        order = torch.cat([torch.arange(0, 2 * hid), torch.arange(3 * hid, 4 * hid), torch.arange(2 * hid, 3 * hid)])
        w = cell.recurrent_layer.weight
        with torch.no_grad():
            ref.weight_ih.copy_(torch.cat([cell.input_layer.weight, w[:, :feed]], 1)[order])
            ref.weight_hh.copy_(w[:, feed:][order])
            ref.bias_ih.copy_(cell.input_layer.bias[order])
            ref.bias_hh.zero_()
        new_h, new_c = cell.step(cell.project_input(x), f, h, c)
        ref_h, ref_c = ref(torch.cat([x, f], 1), (h, c))
        assert torch.allclose(new_c, ref_c, atol=1e-6)
    else:
        ref = torch.nn.GRUCell(emb + feed, hid)
        with torch.no_grad():
            ref.weight_ih.copy_(torch.cat([cell.input_layer.weight, cell.feed_layer.weight], 1))
            ref.bias_ih.copy_(cell.input_layer.bias)
            ref.weight_hh.copy_(cell.hidden_layer.weight)
            ref.bias_hh.copy_(cell.hidden_layer.bias)
        new_h, _ = cell.step(cell.project_input(x), f, h, None)
        ref_h = ref(torch.cat([x, f], 1), h)
    assert torch.allclose(new_h, ref_h, atol=1e-6)


@pytest.mark.parametrize(("rnn_type", "attention", "eos_bias", "seed"),
                         [("gru", "bahdanau", 1.0, 1), ("lstm", "luong_general", 0.0, 1)])
def test_search_does_not_depend_on_the_batch(rnn_type: str, attention: str, eos_bias: float, seed: int) -> None:
    model = sharp_model(rnn_type, attention, eos_bias, seed)
    src, lengths = random_batch(7)
    together = beam_search(model, src, lengths, SearchConfig(beam_size=4), n_best=3, return_attention=True)
    greedy = greedy_search(model, src, lengths)
    assert len({len(hyps[0].tokens) for hyps in together}) > 1  # sentences end at different steps,
    assert len({len(h.tokens) for h in greedy}) > 1  # so the shrinking of the batch is exercised
    for order in (range(7), [6, 2, 0, 4, 1, 5, 3]):
        for start in range(0, 7, 3):
            rows = list(order)[start: start + 3]
            part = beam_search(model, src[rows], lengths[rows], SearchConfig(beam_size=4), n_best=3)
            for row, hyps in zip(rows, part, strict=True):
                assert [h.tokens for h in hyps] == [h.tokens for h in together[row]]
                assert [h.score for h in hyps] == pytest.approx([h.score for h in together[row]], abs=1e-4)
    for row in range(7):
        alone = src[row: row + 1, : int(lengths[row])]
        assert greedy_search(model, alone, lengths[row: row + 1])[0].tokens == greedy[row].tokens
        hyps = together[row]
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True) and len(hyps) == 3
        limit = int(max_lengths(lengths[row: row + 1], SearchConfig()))
        assert hyps[0].attention.shape == (len(hyps[0].tokens) + 1, int(lengths[row])) and len(hyps[0].tokens) < limit
    one_beam = beam_search(model, src, lengths, SearchConfig(beam_size=1))
    assert [h[0].tokens for h in one_beam] == [h.tokens for h in greedy]  # beam 1 is greedy


@pytest.mark.parametrize(("rnn_type", "attention", "eos_bias", "beam_size"),
                         [("gru", "bahdanau", 1.0, 4), ("lstm", "luong_general", 0.0, 3),
                          ("lstm", "luong_general", 0.0, 1)])
def test_continuous_search_gives_every_sentence_its_beam_search_result(rnn_type: str, attention: str,
                                                                       eos_bias: float, beam_size: int) -> None:
    """Sentences joining a running search at different steps (padded to other lengths, beside sentences that
    are half done) and leaving it when they end get exactly what beam_search gives them in a batch."""
    model = sharp_model(rnn_type, attention, eos_bias, 1)
    src, lengths = random_batch(9)
    expected = beam_search(model, src, lengths, SearchConfig(beam_size=beam_size), n_best=1)
    search = ContinuousBeamSearch(model, SearchConfig(beam_size=beam_size))
    arrivals = {0: [0, 1, 2], 1: [3], 2: [4, 5], 3: [6], 9: [7, 8]}  # step → sentences joining before it
    found, step, joined_running = {}, 0, 0
    while step <= max(arrivals) or len(search):
        rows = arrivals.get(step, [])
        if rows:
            joined_running += len(search) > 0
            width = int(lengths[rows].max())
            search.add(src[rows, :width], lengths[rows], [f"s{r}" for r in rows])
        found.update(search.step())
        step += 1
    assert joined_running >= 2 and len(search) == 0 and sorted(found) == sorted(f"s{r}" for r in range(9))
    for row in range(9):
        (hyp,), want = found[f"s{row}"], expected[row][0]
        assert hyp.tokens == want.tokens and hyp.score == pytest.approx(want.score, abs=1e-4)
    assert search.step() == []  # nothing left
    with pytest.raises(ValueError, match="2 keys for 1 sentences"):
        search.add(src[:1], lengths[:1], ["a", "b"])


def test_sentences_removed_from_a_running_search_leave_the_others_their_results() -> None:
    """A client that went away: its sentences leave the search mid-way; the others still get beam search's."""
    model = sharp_model("lstm", "luong_general", 0.0, 1)
    src, lengths = random_batch(6)
    expected = beam_search(model, src, lengths, SearchConfig(beam_size=3), n_best=1)
    search = ContinuousBeamSearch(model, SearchConfig(beam_size=3))
    search.add(src, lengths, list(range(6)))
    found = dict(search.step())
    live = {key for key in (1, 4) if key not in found}  # still decoding after one step
    assert live and search.remove(lambda key: key in (1, 4)) == len(live)
    assert search.remove(lambda key: key == 99) == 0
    while len(search):
        found.update(search.step())
    assert not live & set(found)  # removed: never handed back
    for row in (0, 2, 3, 5):
        assert found[row][0].tokens == expected[row][0].tokens
    search.add(src[:1], lengths[:1], ["last"])
    assert search.remove(lambda key: True) == 1 and len(search) == 0 and search.step() == []


def test_continuous_search_decodes_ensembles() -> None:
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=30, emb_size=8, hidden_size=8, rnn_type="gru", attention="bahdanau")
    ensemble = Seq2SeqEnsemble([Seq2Seq(config).eval(), Seq2Seq(config).eval()])
    src, lengths = torch.randint(4, 30, (3, 5)), torch.tensor([5, 4, 2])
    expected = beam_search(ensemble, src, lengths, SearchConfig(beam_size=3))
    search = ContinuousBeamSearch(ensemble, SearchConfig(beam_size=3))
    search.add(src[:1], lengths[:1], [0])
    found = dict(search.step())
    search.add(src[1:, :4], lengths[1:], [1, 2])
    while len(search):
        found.update(search.step())
    assert [found[i][0].tokens for i in range(3)] == [hyps[0].tokens for hyps in expected]


# ----------------------------------------------------------------------------------------------- metrics
def test_metrics_check_the_reference_layout() -> None:
    hyps = ["The cat sat on the mat.", "A dog runs in the park."]
    refs = ["The cat sat on the mat.", "A dog is running in the park."]
    score = bleu(hyps, refs)
    assert score.score == bleu(hyps, [refs]).score and 0 < score.score < 100
    assert score.signature.startswith("nrefs:1|case:mixed") and score.text.startswith("BLEU")
    assert bleu(hyps[:1], refs[:1]).score == pytest.approx(100.0)
    with pytest.raises(DataError, match="one list of references per sentence"):
        bleu(hyps, [[r] for r in refs])  # transposed layout: sacrebleu would score it silently wrong
    with pytest.raises(TypeError):
        bleu("a string", refs)
    with pytest.raises(DataError, match="1 lines for 2 hypotheses"):
        reference_streams(refs[:1], 2)
    assert reference_streams([refs, refs], 2) == [refs, refs]
    assert chrf(hyps, refs).signature.startswith("nrefs:1") and ter(hyps, refs).score > 0
    assert set(translation_scores(hyps, refs)) == {"bleu", "chrf", "ter"}


# ----------------------------------------------------------------------------------------------- task, bundle
def test_fit_bundle_and_translator_agree(toy_bundle: Path, toy_mt: Path) -> None:
    metrics = json.loads((toy_bundle / "metrics.json").read_text())
    assert {"val/loss", "val/bleu", "test/bleu", "test/chrf", "test/ter"} <= set(metrics)
    assert metrics["test/bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    translator = seq2text.load(toy_bundle)
    assert isinstance(translator, seq2text.Translator)
    sources = (toy_mt / "test_2016_flickr.de").read_text().splitlines()
    references = (toy_mt / "test_2016_flickr.en").read_text().splitlines()
    hypotheses = translator.translate(sources, beam_size=5, batch_size=4)
    assert len(hypotheses) == 25 and all(isinstance(h, str) for h in hypotheses)
    assert bleu(hypotheses, references).score == pytest.approx(metrics["test/bleu"], abs=1e-4)
    assert chrf(hypotheses, references).score == pytest.approx(metrics["test/chrf"], abs=1e-4)


def test_translator_inputs(toy_bundle: Path) -> None:
    translator = seq2text.Translator.load(toy_bundle)
    out = translator.translate(["", "   ", "Der hund läuft.", "日本 ☃ Ωmega"], beam_size=3)
    assert out[:2] == ["", ""] and all(isinstance(t, str) for t in out)
    assert translator.translate([]) == []
    nbest = translator.translate_nbest(["Der hund läuft."], n_best=3, beam_size=4, return_attention=True)[0]
    assert isinstance(nbest[0], seq2text.Translation)
    assert len(nbest) == 3 and nbest[0].score >= nbest[1].score >= nbest[2].score
    first = nbest[0]
    assert first.attention.shape == (len(first.tokens) + 1, len(first.source_tokens))
    assert torch.allclose(first.attention.sum(-1), torch.ones(len(first.tokens) + 1), atol=1e-5)
    translator.reading = dataclasses.replace(translator.reading, max_src_len=5)
    with pytest.warns(UserWarning, match="cut to their first 5 pieces"):
        long = translator.translate_nbest([" ".join(["hund"] * 50)], beam_size=1, return_attention=True)[0][0]
    assert len(long.source_tokens) == 6  # 5 pieces + </s>
    with pytest.raises(TypeError):
        translator.translate("Der hund.")
    with pytest.raises(ConfigError):
        translator.translate_nbest(["a"], n_best=3, beam_size=2)
    with pytest.raises(ConfigError):
        translator.translate(["a"], beam_size=0)
    assert translator.translate_nbest([]) == []


def test_wrong_task_bundle_is_refused(toy_bundle: Path, tmp_path: Path) -> None:
    fake = tmp_path / "lm"
    shutil.copytree(toy_bundle, fake)
    config = json.loads((fake / "config.json").read_text())
    (fake / "config.json").write_text(json.dumps({**config, "task": "language_model"}))
    with pytest.raises(BundleError, match="not a translation model"):
        seq2text.Translator.load(fake)


def test_translate_and_evaluate_commands(toy_bundle: Path, toy_mt: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["translate", "--help"])
    assert done.value.code == 0 and "--beam" in capsys.readouterr().out
    lines = ["Der hund läuft.", "", "Ein mann sieht die katze.", "Frau."]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(lines) + "\n").encode())))
    assert main(["translate", "--model", str(toy_bundle), "--beam", "2", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 5 and out[1] == "" and out[-1] == ""
    assert main(["evaluate", "--model", str(toy_bundle), "--src", str(toy_mt / "test_2016_flickr.de"),
                 "--ref", str(toy_mt / "test_2016_flickr.en")]) == 0
    result = json.loads(capsys.readouterr().out)
    metrics = json.loads((toy_bundle / "metrics.json").read_text())
    assert result["bleu"] == pytest.approx(metrics["test/bleu"], abs=0.01) and result["lines"] == 25
    assert result["bleu_signature"] == metrics["test/bleu_signature"]
    assert main(["evaluate", "--model", str(toy_bundle)]) == 1
    assert "give --src FILE and --ref FILE" in capsys.readouterr().err
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Der hund.\n")))
        assert main(["translate", "--model", str(toy_bundle), "--plot-attention", "a.png"]) == 1
        assert "needs matplotlib, which is not installed" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")
                                          if p.name.startswith(("multi30k", "iwslt14"))))
def test_every_translation_recipe_instantiates(recipe: str, toy_mt: Path, tmp_path: Path) -> None:
    """fast_dev_run with each recipe's own precision (auto: bf16-mixed on a CPU with native bf16, else 32-true)."""
    sizes = ["--model.init_args.network.encoder_hidden_size", "16", "--model.init_args.network.attention_size", "16"]
    bundle = fit(recipe, tmp_path, "--data.init_args.root", str(toy_mt), *TINY_MT,
                 *(sizes if recipe.startswith("iwslt14") else []), "--data.init_args.max_len", "100",
                 "--trainer.fast_dev_run", "1", "--test_after_fit", "false")
    assert (bundle / "model.safetensors").is_file()
    assert json.loads((bundle / "config.json").read_text())["task"] == "translation"


# ----------------------------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_multi30k_counts_and_alignment(real_data: Path) -> None:
    files = resolve_parallel("multi30k", "de", "en", allow_hub=False)
    assert all(path.parent == real_data / "multi30k" for pair in files.values() for path in pair)
    expected = {"train": 29000, "valid": 1014, "test": 1000}
    for split, (src_path, trg_path) in files.items():
        sources, targets = read_parallel(src_path, trg_path)
        assert len(sources) == len(targets) == expected[split], split
        assert all(s.strip() and t.strip() for s, t in zip(sources, targets, strict=True)), split
    sources, targets = read_parallel(*files["test"])
    assert sum(len(t.split()) for t in targets) == 11877  # raw, cased, untokenized (PROVENANCE.md)
    assert targets[0][0].isupper() and targets[0].endswith(".")


def test_two_process_evaluation_counts_every_pair_once(toy_mt: Path) -> None:
    """DDP (2 CPU processes): equal batch counts per rank, and the gathered hypotheses score as in one process."""
    import pytorch_lightning as pl

    from seq2text.tasks import TranslationTask
    from seq2text.tasks.config import Seq2SeqNetwork

    dm = TranslationDataModule("multi30k", root=str(toy_mt), tokenizer_vocab_size=100, max_tokens=150)
    torch.manual_seed(0)
    task = TranslationTask(dm.vocab_size, Seq2SeqNetwork(16, 16), search=SearchConfig(beam_size=2))
    with torch.no_grad():  # peaked distributions: no near-ties that float rounding in other batch shapes could flip
        task.net.embedding.weight.mul_(30.0)
    results = {}
    for devices, strategy in ((1, "auto"), (2, "ddp_spawn")):
        trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy=strategy, logger=False,
                             enable_progress_bar=False, enable_model_summary=False)
        results[devices] = trainer.test(task, datamodule=dm, verbose=False)[0]
    assert {"test/bleu", "test/chrf", "test/loss"} <= set(results[2])  # BLEU needs all 25 hypotheses
    for key in ("test/bleu", "test/chrf", "test/ter", "test/loss", "test/tokens"):
        assert results[2][key] == pytest.approx(results[1][key], rel=1e-5), key
