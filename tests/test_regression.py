"""Text regression (issue 14): a number from a text on the classifier's encoder, its bundle and `Regressor`."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import seq2text
from seq2text.cli import main
from seq2text.predict.regressor import distribution_median, ordinal_median
from seq2text.serving.server import ServeConfig, create_app
from seq2text.tasks.config import TextObjective
from seq2text.text.reading import read_labeled
from tests.conftest import TINY_CLS, fit, perturbed, run_fit, toy_rows


def _write(root: Path, seed: int = 0) -> None:
    """Toy reviews whose rating is 8 ± 1 with a positive word and 3 ± 1 with a negative one."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for name, n, split_seed in (("train", 300, 0), ("dev", 40, 1), ("test", 50, 2)):
        rows = [(text, (8 if label == "1" else 3) + rng.choice((-1, 0, 1))) for text, label in toy_rows(n, split_seed)]
        (root / f"{name}.tsv").write_text("text\trating\n" + "".join(f"{t}\t{r}\n" for t, r in rows))


def _files(root: Path) -> list[str]:
    return ["--data.init_args.dataset", "null", "--data.init_args.label_column", "rating",
            *(f"--data.init_args.{split}_file={root / name}.tsv" for split, name in
              (("train", "train"), ("valid", "dev"), ("test", "test"))), "--data.init_args.tokenizer_type", "word",
            "--data.init_args.tokenizer_vocab_size", "null", *TINY_CLS, "--trainer.precision", "32"]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ratings")
    _write(root)
    return root


def _rating_bundle(reviews: Path, tmp_path_factory: pytest.TempPathFactory, loss: str, epochs: int = 6) -> Path:
    """The imdb_rating recipe on the toy reviews with the head of `loss`."""
    return fit("imdb_rating.yaml", tmp_path_factory.mktemp(loss), *_files(reviews), "--trainer.max_epochs",
               str(epochs), "--model.init_args.optim.lr", "0.01", "--model.init_args.optim.warmup_steps", "0",
               "--model.init_args.objective.loss", loss)


@pytest.fixture(scope="module")
def point_bundle(reviews: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rating_bundle(reviews, tmp_path_factory, "huber")


@pytest.fixture(scope="module")
def quantile_bundle(reviews: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rating_bundle(reviews, tmp_path_factory, "quantile")


@pytest.fixture(scope="module")
def distribution_bundle(reviews: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rating_bundle(reviews, tmp_path_factory, "distribution", epochs=12)


@pytest.fixture(scope="module")
def ordinal_bundle(reviews: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rating_bundle(reviews, tmp_path_factory, "ordinal")


def test_text_regression_learns_and_the_regressor_reproduces_the_test_run(reviews: Path, point_bundle: Path) -> None:
    bundle = point_bundle
    metrics = json.loads((bundle / "metrics.json").read_text())
    texts, ratings = read_labeled(reviews / "test.tsv", "text", "rating")
    targets = [float(r) for r in ratings]
    mean_mae = float(np.mean(np.abs(np.asarray(targets) - np.mean(targets))))
    assert metrics["test/mae"] < 0.5 * mean_mae, (metrics, mean_mae)  # far better than predicting the mean
    regressor = seq2text.load(bundle)
    assert isinstance(regressor, seq2text.Regressor) and regressor.quantiles == ()
    assert regressor.evaluate(texts, targets)["mae"] == pytest.approx(metrics["test/mae"], rel=1e-4)
    good, bad = regressor.predict(["a superb film", "an awful film"])
    assert good > 6 > 5 > bad and regressor.predict([]) == []
    with TestClient(create_app(regressor, ServeConfig())) as client:  # seq2text serve: POST /predict
        served = client.post("/predict", json={"texts": ["a superb film", "an awful film"]}).json()["values"]
    assert served == pytest.approx([good, bad])
    with pytest.raises(seq2text.BundleError, match="text_regression model, not a classification model"):
        seq2text.Classifier.load(bundle)


def test_quantile_regression_orders_its_outputs(quantile_bundle: Path) -> None:
    regressor = seq2text.load(quantile_bundle)
    outputs = regressor.outputs(["a superb film", "an awful film", "the plot"])
    assert regressor.quantiles == (0.1, 0.5, 0.9) and outputs.shape == (3, 3)
    assert (outputs[:, 0] <= outputs[:, 2]).all()


def test_a_regressor_ensemble_averages_its_members(reviews: Path, point_bundle: Path, quantile_bundle: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    """The mean of the members' outputs, evaluated as one regressor (Python, `seq2text evaluate`, `/predict`);
    members of other quantiles are refused."""
    first, second = seq2text.Regressor.load(point_bundle), seq2text.Regressor.load(point_bundle)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a second member that predicts otherwise
        for parameter in second.net.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    ensemble = seq2text.RegressorEnsemble([first, second])
    texts, ratings = read_labeled(reviews / "test.tsv", "text", "rating")
    assert torch.allclose(ensemble.outputs(texts), (first.outputs(texts) + second.outputs(texts)) / 2)
    assert ensemble.predict(texts) == pytest.approx([(a + b) / 2 for a, b in zip(first.predict(texts),
                                                                                  second.predict(texts), strict=True)])
    scores = ensemble.evaluate(texts, ratings)  # the file's strings, as `seq2text evaluate` passes them
    assert scores["examples"] == len(texts) and scores["rmse"] >= scores["mae"] > 0
    same = seq2text.load([point_bundle, point_bundle])
    assert isinstance(same, seq2text.RegressorEnsemble) and same.predict(texts) == pytest.approx(first.predict(texts))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(point_bundle), str(point_bundle), "--input",
                 str(reviews / "test.tsv")]) == 0
    assert json.loads(capsys.readouterr().out)["mae"] == pytest.approx(first.evaluate(texts, ratings)["mae"])
    with TestClient(create_app(ensemble, ServeConfig())) as client:
        assert client.post("/predict", json={"texts": texts[:2]}).json()["values"] == pytest.approx(
            ensemble.predict(texts[:2]))
    with pytest.raises(seq2text.BundleError, match=r"member 1 predicts quantiles \(0.1, 0.5, 0.9\), member 0 \(\)"):
        seq2text.load([point_bundle, quantile_bundle])
    with pytest.raises(seq2text.DataError, match="not a number"):
        first.evaluate(["a film"], ["great"])


def test_the_median_of_a_distribution_is_the_first_value_whose_cumulative_probability_reaches_half() -> None:
    probabilities = torch.tensor([[0.2, 0.2, 0.6], [0.5, 0.1, 0.4], [0.1, 0.3, 0.6], [0.0, 0.0, 1.0]])
    assert distribution_median(probabilities, torch.tensor([1.0, 2.0, 4.0])).tolist() == [4.0, 1.0, 4.0, 4.0]


def test_a_distribution_head_learns_the_training_values_and_predicts_their_median(
        reviews: Path, distribution_bundle: Path) -> None:
    """The support is the distinct training ratings, kept in the bundle; the regressor gives their probabilities and
    predicts the median, as the test run scored it."""
    metrics = json.loads((distribution_bundle / "metrics.json").read_text())
    config = json.loads((distribution_bundle / "config.json").read_text())
    assert config["regression"] == {"loss": "distribution", "quantiles": [], "support": [2.0, 3.0, 4.0, 7.0, 8.0, 9.0]}
    texts, ratings = read_labeled(reviews / "test.tsv", "text", "rating")
    targets = np.asarray([float(r) for r in ratings])
    assert metrics["test/mae"] < 0.5 * float(np.mean(np.abs(targets - targets.mean()))), metrics
    regressor = seq2text.load(distribution_bundle)
    assert regressor.support == (2.0, 3.0, 4.0, 7.0, 8.0, 9.0) and regressor.quantiles == ()
    probabilities = regressor.outputs(texts)
    assert probabilities.shape == (len(texts), 6) and torch.allclose(probabilities.sum(1), torch.ones(len(texts)))
    predicted = regressor.predict(texts)
    assert set(predicted) <= set(regressor.support)
    assert predicted == distribution_median(probabilities, torch.tensor(regressor.support)).tolist()
    assert regressor.evaluate(texts, ratings)["mae"] == pytest.approx(metrics["test/mae"], rel=1e-4)
    good, bad = regressor.predict(["a superb film", "an awful film"])
    assert good >= 7 > 4 >= bad


def test_the_ordinal_median_is_the_value_above_as_many_gaps_as_are_likely_exceeded() -> None:
    exceed = torch.tensor([[0.9, 0.6, 0.2], [0.4, 0.1, 0.0], [1.0, 0.9, 0.7]])  # P(y > 1), P(y > 2), P(y > 4)
    assert ordinal_median(exceed, torch.tensor([1.0, 2.0, 4.0, 7.0])).tolist() == [4.0, 1.0, 7.0]


def test_an_ordinal_head_learns_each_gap_and_predicts_the_median(reviews: Path, ordinal_bundle: Path,
                                                                  distribution_bundle: Path) -> None:
    """One output per gap between the training ratings, P(rating > value); the bundle keeps the support, the
    regressor predicts as the test run scored; members of another head are refused."""
    metrics = json.loads((ordinal_bundle / "metrics.json").read_text())
    config = json.loads((ordinal_bundle / "config.json").read_text())
    assert config["regression"] == {"loss": "ordinal", "quantiles": [], "support": [2.0, 3.0, 4.0, 7.0, 8.0, 9.0]}
    assert config["net"]["num_classes"] == 5
    texts, ratings = read_labeled(reviews / "test.tsv", "text", "rating")
    targets = np.asarray([float(r) for r in ratings])
    assert metrics["test/mae"] < 0.5 * float(np.mean(np.abs(targets - targets.mean()))), metrics
    regressor = seq2text.load(ordinal_bundle)
    assert regressor.ordinal and regressor.support == (2.0, 3.0, 4.0, 7.0, 8.0, 9.0)
    exceed = regressor.outputs(texts)
    assert exceed.shape == (len(texts), 5) and ((exceed > 0) & (exceed < 1)).all()
    assert regressor.predict(texts) == ordinal_median(exceed, torch.tensor(regressor.support)).tolist()
    assert regressor.evaluate(texts, ratings)["mae"] == pytest.approx(metrics["test/mae"], rel=1e-4)
    good, bad = regressor.predict(["a superb film", "an awful film"])
    assert good >= 7 > 4 >= bad
    ensemble = seq2text.load([ordinal_bundle, ordinal_bundle])
    assert ensemble.predict(texts) == regressor.predict(texts)
    with pytest.raises(seq2text.BundleError, match=r"member 1 predicts over the values \(support, ordinal\) "
                                                   r"\(\(2.0, 3.0, 4.0, 7.0, 8.0, 9.0\), False\)"):
        seq2text.load([ordinal_bundle, distribution_bundle])


def test_a_distribution_ensemble_takes_the_median_of_the_mean_probabilities(
        reviews: Path, point_bundle: Path, distribution_bundle: Path) -> None:
    first, second = seq2text.Regressor.load(distribution_bundle), seq2text.Regressor.load(distribution_bundle)
    perturbed(second)  # a second member that predicts otherwise
    ensemble = seq2text.RegressorEnsemble([first, second])
    texts, _ = read_labeled(reviews / "test.tsv", "text", "rating")
    mean = (first.outputs(texts) + second.outputs(texts)) / 2
    assert torch.allclose(ensemble.outputs(texts), mean)
    assert ensemble.predict(texts) == distribution_median(mean, torch.tensor(first.support)).tolist()
    with pytest.raises(seq2text.BundleError,
                       match=r"member 1 predicts over the values \(support, ordinal\) \(\(\), False\), member 0"):
        seq2text.load([distribution_bundle, point_bundle])


def test_a_bundle_without_a_support_entry_loads_as_a_point_regressor(point_bundle: Path, tmp_path: Path) -> None:
    """Bundles written before distribution heads have no `support` in their `regression` entry."""
    old = tmp_path / "old"
    shutil.copytree(point_bundle, old)
    config = json.loads((old / "config.json").read_text())
    del config["regression"]["support"]
    (old / "config.json").write_text(json.dumps(config))
    regressor, current = seq2text.load(old), seq2text.load(point_bundle)
    assert regressor.support == () and regressor.predict(["a superb film"]) == current.predict(["a superb film"])


def test_distribution_settings_are_checked(reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(seq2text.ConfigError, match="support needs objective.loss: distribution or ordinal"):
        TextObjective(loss="huber", support=[1.0, 2.0]).resolved()
    with pytest.raises(seq2text.ConfigError, match="distinct finite values, increasing; got \\[3.0, 1.0\\]"):
        TextObjective(loss="distribution", support=[3.0, 1.0]).resolved()
    many = tmp_path / "many"
    many.mkdir()
    for name in ("train", "dev", "test"):  # continuous targets: far too many values for a distribution
        rows = [f"{text}\t{i / 7:.4f}\n" for i, (text, _) in enumerate(toy_rows(120, 0))]
        (many / f"{name}.tsv").write_text("text\trating\n" + "".join(rows))
    capsys.readouterr()
    assert run_fit("imdb_rating.yaml", tmp_path / "out", *_files(many), "--trainer.max_epochs", "1",
                   "--model.init_args.objective.loss", "distribution") == 1
    assert "the training targets: objective.loss distribution or ordinal needs 2 to 100" in capsys.readouterr().err


def test_non_numeric_targets_are_refused(reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad"
    _write(bad)
    lines = (bad / "train.tsv").read_text().splitlines()
    lines[5] = lines[5].rsplit("\t", 1)[0] + "\tgreat"
    (bad / "train.tsv").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert run_fit("imdb_rating.yaml", tmp_path / "out", *_files(bad), "--trainer.max_epochs", "1") == 1
    assert "row 5 after the header: rating is 'great', not a number" in capsys.readouterr().err
    assert not (tmp_path / "out" / "bundle").exists()
