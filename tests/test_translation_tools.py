"""Translation quality tools: checkpoint averaging (`seq2text average`) and ensembles of translator bundles
(probabilities averaged inside greedy and beam search)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seq2text
from seq2text.bundles.averaging import average_checkpoints
from seq2text.cli import main
from seq2text.errors import BundleError, ConfigError
from seq2text.nn.ensemble import Seq2SeqEnsemble
from seq2text.nn.search import SearchConfig, beam_search
from seq2text.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from seq2text.predict.translator import Translator, TranslatorEnsemble
from tests.conftest import REPO, TINY_MT, fit, write_multi30k

SENTENCES = ["der hund läuft im park", "", "eine katze schläft im haus", "der mann sieht die rote katze"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy translator trained 3 epochs with the keep_last_5 overlay (the session translator's data and
    tokenizer, another seed); returns its output folder (bundle/ and runs/)."""
    root = tmp_path_factory.mktemp("toy_mt_session")
    write_multi30k(root, (120, 15, 15))
    out = tmp_path_factory.mktemp("averaged_run")
    fit("multi30k_bigru_attention.yaml", out, "--config", str(REPO / "recipes" / "overlays" / "keep_last_5.yaml"),
        "--data.init_args.root", str(root), *TINY_MT, "--data.init_args.tokenizer_vocab_size", "80",
        "--model.init_args.network.emb_size", "16", "--model.init_args.network.hidden_size", "16",
        "--model.init_args.val_bleu", "false", "--model.init_args.search.beam_size", "2", "--seed_everything", "7",
        "--trainer.max_epochs", "3", "--trainer.precision", "32", "--test_after_fit", "false")
    return out


def _checkpoints(run: Path) -> list[Path]:
    return sorted(run.rglob("*.ckpt"))


# ------------------------------------------------------------------------------------------ averaging
def test_the_overlay_keeps_one_checkpoint_per_epoch(run: Path) -> None:
    assert [p.name.split("-")[0] for p in _checkpoints(run)] == ["epoch=0", "epoch=1", "epoch=2"]


def test_averaging_the_last_checkpoint_alone_gives_the_bundle(run: Path, tmp_path: Path) -> None:
    averaged = average_checkpoints(run / "bundle", [run / "runs"], tmp_path / "last1", last=1)
    original, copy = load_file(run / "bundle" / "model.safetensors"), load_file(averaged / "model.safetensors")
    assert original.keys() == copy.keys()
    assert all(torch.equal(original[k], copy[k]) for k in original)
    assert seq2text.load(averaged).translate(SENTENCES) == seq2text.load(run / "bundle").translate(SENTENCES)


def test_averaging_gives_the_mean_of_the_weights(run: Path, tmp_path: Path) -> None:
    assert main(["average", "--model", str(run / "bundle"), "--checkpoints", *map(str, _checkpoints(run)[1:]),
                 "--output", str(tmp_path / "avg")]) == 0
    states = [torch.load(p, map_location="cpu", weights_only=True)["state_dict"] for p in _checkpoints(run)[1:]]
    averaged = load_file(tmp_path / "avg" / "model.safetensors")
    for key, value in averaged.items():
        assert torch.allclose(value, (states[0][f"net.{key}"] + states[1][f"net.{key}"]) / 2, atol=1e-7), key
    metrics = seq2text.load(tmp_path / "avg").metrics
    assert [c["epoch"] for c in metrics["averaged_checkpoints"]] == [1, 2]
    assert not any(k.startswith("test/") for k in metrics)  # the single model's scores do not apply
    assert len(seq2text.load(tmp_path / "avg").translate(SENTENCES)) == len(SENTENCES)


def test_averaging_refuses_bad_input(run: Path, translator_bundle: Path, lm_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source bundle"):
        average_checkpoints(run / "bundle", [run / "runs"], run / "bundle")
    with pytest.raises(ConfigError, match="no .ckpt"):
        average_checkpoints(run / "bundle", [tmp_path], tmp_path / "out")
    with pytest.raises(ConfigError, match="does not exist"):
        average_checkpoints(run / "bundle", [tmp_path / "missing.ckpt"], tmp_path / "out")
    with pytest.raises(ConfigError, match="--last"):
        average_checkpoints(run / "bundle", [run / "runs"], tmp_path / "out", last=0)
    with pytest.raises(BundleError, match="not a checkpoint of the network"):
        average_checkpoints(lm_bundle, [run / "runs"], tmp_path / "out")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(_checkpoints(run)[-1].read_bytes()[:1000])
    with pytest.raises(BundleError, match="truncated"):
        average_checkpoints(run / "bundle", [broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ ensembles
def test_an_ensemble_of_one_model_twice_decodes_as_the_model(translator_bundle: Path) -> None:
    single = Translator.load(translator_bundle)
    twice = seq2text.load([translator_bundle, translator_bundle])
    assert isinstance(twice, TranslatorEnsemble)
    for beam in (1, 3):
        ours = twice.translate_nbest(SENTENCES, n_best=1, beam_size=beam)
        theirs = single.translate_nbest(SENTENCES, n_best=1, beam_size=beam)
        assert [h[0].text for h in ours] == [h[0].text for h in theirs]
        assert [h[0].score for h in ours] == pytest.approx([h[0].score for h in theirs], abs=1e-5)


def test_the_ensemble_averages_the_members_probabilities() -> None:
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=30, emb_size=8, hidden_size=8, rnn_type="gru", attention="bahdanau")
    members = [Seq2Seq(config).eval(), Seq2Seq(config).eval()]
    ensemble = Seq2SeqEnsemble(members)
    src, lengths = torch.randint(4, 30, (3, 5)), torch.tensor([5, 4, 2])
    enc, state = ensemble.encode(src, lengths)
    tokens = torch.full((3,), config.bos_id)
    log_probs, _, weights = ensemble.decode_step(tokens, state, enc)  # (3, 30), (3, 5)
    expected = sum(m.decode_step(tokens, *reversed(m.encode(src, lengths)))[0].exp() for m in members) / 2
    assert torch.allclose(log_probs, expected.log(), atol=1e-6)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3), atol=1e-5)
    assert weights.shape == (3, 5)
    found = beam_search(ensemble, src, lengths, SearchConfig(beam_size=3), n_best=2)
    assert all(len(hyps) == 2 and hyps[0].score >= hyps[1].score for hyps in found)
    assert all(math.isfinite(h.log_prob) for hyps in found for h in hyps)


def test_two_trained_members_decode_together(run: Path, translator_bundle: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    ensemble = TranslatorEnsemble.load([translator_bundle, run / "bundle"])
    assert len(ensemble.translate(SENTENCES)) == len(SENTENCES)
    source, reference = tmp_path / "src.de", tmp_path / "ref.en"
    source.write_text("der hund läuft\neine katze schläft\n")
    reference.write_text("the dog runs\na cat sleeps\n")
    assert main(["evaluate", "--model", str(translator_bundle), str(run / "bundle"), "--src", str(source),
                 "--ref", str(reference)]) == 0
    assert '"bleu_signature": "nrefs:1' in capsys.readouterr().out


def test_ensembles_refuse_members_that_cannot_decode_together(translator_bundle: Path, lm_bundle: Path,
                                                              classifier_bundle: Path, tmp_path: Path) -> None:
    other = Translator.load(translator_bundle)
    other.tokenizer = seq2text.load(lm_bundle).tokenizer  # a member with another vocabulary
    with pytest.raises(BundleError, match="another tokenizer"):
        TranslatorEnsemble([Translator.load(translator_bundle), other])
    with pytest.raises(seq2text.ConfigError, match="at least one member"):
        TranslatorEnsemble([])
    with pytest.raises(BundleError, match="ensemble member 1"):
        TranslatorEnsemble.load([translator_bundle, classifier_bundle])
    copy = tmp_path / "copy"
    shutil.copytree(translator_bundle, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="member 1"):
        seq2text.load([translator_bundle, copy])
