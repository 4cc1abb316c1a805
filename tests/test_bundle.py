import json
import shutil
from pathlib import Path

import pytest
import torch

import seq2text
from seq2text.bundles.io import read_bundle, save_bundle
from seq2text.errors import BundleError


@pytest.fixture(scope="module")
def bundle(lm_bundle: Path) -> Path:
    return lm_bundle


def copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(bundle, target)
    return target


def test_bundle_is_complete_and_copyable(bundle: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "metrics.json", "model.safetensors",
                                                         "tokenizer.model"]
    moved = copy(bundle, tmp_path)
    assert seq2text.load(moved).perplexity(["the cat sat"]) == seq2text.load(bundle).perplexity(["the cat sat"])


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.model", "metrics.json"])
def test_missing_file(bundle: Path, tmp_path: Path, name: str) -> None:
    broken = copy(bundle, tmp_path)
    (broken / name).unlink()
    with pytest.raises(BundleError, match=f"missing {name}"):
        seq2text.load(broken)


def test_wrong_task_truncated_weights_and_foreign_tokenizer(bundle: Path, tmp_path: Path) -> None:
    other = copy(bundle, tmp_path)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "task": "translation"}))
    with pytest.raises(BundleError, match="holds a translation model, not a language_model"):
        seq2text.LanguageModel.load(other)
    weights = (bundle / "model.safetensors").read_bytes()
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(BundleError, match="truncated"):
        seq2text.load(other)
    (other / "model.safetensors").write_bytes(weights)
    (other / "config.json").write_text(json.dumps({**config, "net": {**config["net"], "hidden_size": 99}}))
    with pytest.raises(BundleError, match="do not fit"):
        seq2text.load(other)
    (other / "config.json").write_text(json.dumps({**config, "tokenizer": "0123456789abcdef"}))
    with pytest.raises(BundleError, match="not the tokenizer"):
        seq2text.load(other)
    (other / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        seq2text.load(other)
    with pytest.raises(BundleError, match="not a directory"):
        seq2text.load(tmp_path / "nowhere")


def test_pickled_weights_are_never_loaded(bundle: Path, tmp_path: Path) -> None:
    evil = copy(bundle, tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (marker,))

    torch.save({"x": Payload()}, evil / "model.safetensors")
    with pytest.raises(BundleError):
        seq2text.load(evil)
    assert not marker.exists()


def test_save_is_atomic_and_replaces(bundle: Path, tmp_path: Path) -> None:
    contents = read_bundle(bundle)
    target = tmp_path / "out"
    save_bundle(target, contents.task, contents.config["net"], contents.weights, contents.tokenizer, {"a": 1},
                {"data": contents.config["data"]})
    save_bundle(target, contents.task, contents.config["net"], contents.weights, contents.tokenizer, {"a": 2},
                {"data": contents.config["data"]})
    assert json.loads((target / "metrics.json").read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary or old copies left behind

    class Boom(dict):
        def items(self):  # noqa: ANN201
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_bundle(target, contents.task, contents.config["net"], Boom(), contents.tokenizer, {"a": 3})
    assert json.loads((target / "metrics.json").read_text()) == {"a": 2}  # the saved bundle is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_existing_folder_that_is_not_a_bundle_is_never_overwritten(bundle: Path, tmp_path: Path) -> None:
    contents = read_bundle(bundle)
    precious = tmp_path / "logs"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="never overwritten"):
        save_bundle(precious, contents.task, contents.config["net"], contents.weights, contents.tokenizer, {})
    assert (precious / "notes.txt").read_text() == "keep me"


OLD_LAYOUT = Path(__file__).parent / "fixtures" / "old_layout"


@pytest.mark.parametrize("task", ["language_model", "classifier", "translator"])
def test_bundles_written_by_the_previous_layout_still_load_and_predict_the_same(task: str) -> None:
    """Small bundles written before the package was regrouped into text/, bundles/, predict/ and serving/,
    with what they predicted then (tests/fixtures/old_layout/expected.json)."""
    expected = json.loads((OLD_LAYOUT / "expected.json").read_text(encoding="utf-8"))[task]
    model = seq2text.load(OLD_LAYOUT / task)
    texts = expected["texts"]
    if task == "language_model":
        assert model.score(texts) == pytest.approx(expected["score"], rel=1e-5)
    elif task == "classifier":
        assert model.predict(texts) == expected["labels"]
        for got, want in zip(model.predict_proba(texts), expected["proba"], strict=True):
            assert got == pytest.approx(want, rel=1e-5)
    else:
        assert model.translate(texts, beam_size=2) == expected["translations"]


def test_load_follows_one_rule_for_lists_of_bundles() -> None:
    """One bundle in a list gives its predictor; several of one task give the task's ensemble (every task has one);
    mixed tasks are refused naming both; `task` refuses bundles of another."""
    classifier, lm = OLD_LAYOUT / "classifier", OLD_LAYOUT / "language_model"
    assert type(seq2text.load([classifier])) is seq2text.Classifier
    assert type(seq2text.load([classifier, classifier])) is seq2text.ClassifierEnsemble
    assert type(seq2text.load([lm, lm])) is seq2text.LanguageModelEnsemble
    with pytest.raises(BundleError, match="ensemble member 1: .* holds a language_model model, not a classification"):
        seq2text.load([classifier, lm])
    with pytest.raises(BundleError, match="ensemble member 0: .* holds a classification model, not a language_model"):
        seq2text.load([classifier, classifier], task="language_model")
    with pytest.raises(BundleError, match="holds a classification model, not a translation"):
        seq2text.load([classifier], task="translation")
    with pytest.raises(BundleError, match="got no bundle"):
        seq2text.load([])


def test_an_unknown_task_names_the_known_ones(tmp_path: Path) -> None:
    bundle = tmp_path / "future"
    shutil.copytree(OLD_LAYOUT / "classifier", bundle)
    config = json.loads((bundle / "config.json").read_text())
    (bundle / "config.json").write_text(json.dumps({**config, "task": "speech_recognition"}))
    with pytest.raises(BundleError, match="'speech_recognition' model.*knows classification, forecasting"):
        seq2text.load(bundle)
