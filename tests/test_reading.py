"""The reading layer (issue 12): one spec per task, written into the bundle and read back by the predictors; no
Lightning on the prediction road; one length-bucketing batcher; one shape per API call."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import seq2text
from seq2text.errors import BundleError
from seq2text.text.reading import ClassifierReading, LMReading, TranslationReading, cut_batches, length_batches
from tests.conftest import REPO

SPECS = {"lm_bundle": LMReading, "classifier_bundle": ClassifierReading, "translator_bundle": TranslationReading}


def test_import_and_prediction_never_load_lightning(lm_bundle: Path, classifier_bundle: Path,
                                                   translator_bundle: Path) -> None:
    script = f"""
import sys
import seq2text
assert not [m for m in sys.modules if "lightning" in m], "import seq2text loaded Lightning"
lm = seq2text.load({str(lm_bundle)!r})
assert lm.perplexity(["the cat sat"]) > 1 and len(lm.score(["a dog", ""])) == 2
assert isinstance(lm.generate("the", 3, seed=1), str)
assert seq2text.load({str(classifier_bundle)!r}).predict(["a good film", ""])[0] in ("0", "1")
assert len(seq2text.load({str(translator_bundle)!r}).translate(["Der hund.", ""])) == 2
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric"))
print("LOADED", loaded)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED []" in result.stdout


@pytest.mark.parametrize("fixture", sorted(SPECS))
def test_the_bundle_holds_the_spec_the_predictor_reads(fixture: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    bundle = request.getfixturevalue(fixture)
    config = json.loads((bundle / "config.json").read_text())
    spec = SPECS[fixture].from_bundle(config)
    assert config["reading"] == spec.to_dict() and seq2text.load(bundle).reading == spec
    old = Path(shutil.copytree(bundle, tmp_path / "old"))  # a bundle written before the reading spec existed
    (old / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "reading"}))
    assert seq2text.load(old).reading == spec


def test_a_broken_spec_says_to_export_again(classifier_bundle: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(classifier_bundle, tmp_path / "broken"))
    config = json.loads((broken / "config.json").read_text())
    config["reading"] = {**config["reading"], "labels": 7}
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="export the bundle again|labels"):
        seq2text.load(broken).predict(["a film"])


def test_empty_input_gives_empty_lists_everywhere(lm_bundle: Path, classifier_bundle: Path,
                                                  translator_bundle: Path) -> None:
    lm, classifier, translator = (seq2text.load(b) for b in (lm_bundle, classifier_bundle, translator_bundle))
    assert lm.score([]) == [] and classifier.predict([]) == [] and classifier.predict_proba([]) == []
    assert seq2text.load([classifier_bundle, classifier_bundle]).predict([]) == []
    assert translator.translate([]) == [] and translator.translate_nbest([]) == []


def test_translate_is_always_strings_and_nbest_is_dataclasses(translator_bundle: Path) -> None:
    translator = seq2text.load(translator_bundle)
    assert all(isinstance(t, str) for t in translator.translate(["Der hund.", "Ein mann."], beam_size=2))
    best = translator.translate_nbest(["Der hund."], n_best=2, beam_size=2)
    assert len(best) == 1 and len(best[0]) == 2 and all(isinstance(t, seq2text.Translation) for t in best[0])


def test_the_translator_takes_its_defaults_from_the_bundle(translator_bundle: Path, tmp_path: Path) -> None:
    config = json.loads((translator_bundle / "config.json").read_text())
    translator = seq2text.load(translator_bundle)
    assert translator.search == seq2text.SearchConfig(**config["search"]) and translator.search.beam_size == 2
    greedy = Path(shutil.copytree(translator_bundle, tmp_path / "greedy"))
    (greedy / "config.json").write_text(json.dumps({**config, "search": {**config["search"], "beam_size": 1}}))
    texts = ["Der hund läuft.", "Ein rote katze schläft im haus."]
    assert seq2text.load(greedy).translate(texts) == translator.translate(texts, beam_size=1)
    assert translator.translate(texts) == translator.translate(texts, beam_size=2)


def test_the_classifier_batches_within_the_bundles_budget(classifier_bundle: Path) -> None:
    classifier = seq2text.load(classifier_bundle)
    texts = ["good", "a long and very dull film with a plot", "fun", ""]
    assert classifier.reading.eval_max_tokens == 100_000  # the fit's data.eval_max_tokens (conftest TINY_CLS)
    tight = classifier.probabilities(texts, max_tokens=1)  # one text per batch
    assert np.allclose(tight.numpy(), classifier.probabilities(texts).numpy(), atol=1e-6)


@pytest.mark.parametrize(("budget", "items"), [(10, np.inf), (12, 2), (3, np.inf), (1000, 3)])
def test_one_batcher_cuts_by_length_within_the_budget(budget: int, items: float) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 8, size=40).tolist()
    groups = length_batches(lengths, budget, items)
    assert sorted(i for group in groups for i in group) == list(range(40))  # every item exactly once
    for group in groups:
        assert len(group) <= items and (len(group) == 1 or len(group) * max(lengths[i] for i in group) <= budget)
    order = [i for group in groups for i in group]
    assert [lengths[i] for i in order] == sorted(lengths)  # shortest first, so padding stays small
    sizes = np.asarray(lengths)
    assert groups == cut_batches(np.argsort(sizes, kind="stable"), sizes, budget, items)
