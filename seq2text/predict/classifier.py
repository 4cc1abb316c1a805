"""The text classifier's predictor and the ensemble of classifiers (mean class probabilities), reading texts
through the bundle's `ClassifierReading` exactly as training did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from seq2text.errors import BundleError, ConfigError
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.predict.metrics import classification_scores
from seq2text.predict.shared import Ensemble, _read, _str_list, _TextHead
from seq2text.text.reading import ClassifierReading
from seq2text.text.tokenizer import Tokenizer

__all__ = ["Classifier", "ClassifierEnsemble"]


class _LabelPredictor:
    """Labels and scores from `probabilities`, shared by a classifier and an ensemble of them."""

    labels: list[str]

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One `{label: probability}` dict per text."""
        return [dict(zip(self.labels, row, strict=True)) for row in self.probabilities(texts).tolist()]

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each text."""
        return [self.labels[i] for i in self.probabilities(texts).argmax(dim=-1).tolist()]

    def evaluate(self, texts: Sequence[str], gold: Sequence[str]) -> dict:
        """Accuracy, macro-F1 and confusion counts on labeled texts (see
        `seq2text.predict.metrics.classification_scores`)."""
        return classification_scores(self.predict(texts), gold, self.labels)


class Classifier(_TextHead, _LabelPredictor):
    """A trained text classifier. Texts are read as in training (`reading`: whitespace, case, `max_len`,
    direction); an empty one is classified from the start token alone (about the training label prior).

    Args:
        reading: how texts are read, the class names (`reading.labels`, in class-index order) and the batch
            budget of prediction (`reading.eval_max_tokens` padded tokens).
    """

    task = "classification"

    def __init__(self, net: RNNClassifier, tokenizer: Tokenizer, reading: ClassifierReading,
                 metrics: dict | None = None) -> None:
        if not reading.labels:
            raise ConfigError("reading.labels is empty: give the class names in class-index order")
        self.net, self.tokenizer, self.reading, self.metrics = net.eval(), tokenizer, reading, metrics or {}
        self.labels = list(reading.labels)

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle, net = _read(path, cls.task, RNNClassifier, ClassifierConfig)
        reading = ClassifierReading.from_bundle(bundle.config, path)
        classes = bundle.config["net"]["num_classes"]
        if not reading.labels:
            reading = replace(reading, labels=tuple(str(i) for i in range(classes)))
        if len(reading.labels) != classes:
            raise BundleError(f"{bundle.path}/config.json lists {len(reading.labels)} labels for a "
                              f"{classes}-class network; export the bundle again")
        return cls(net, bundle.tokenizer, reading, bundle.metrics)

    def probabilities(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """Class probabilities, (len(texts), num_classes), in the order of `self.labels`; `max_tokens` padded tokens
        per batch (default: the bundle's `eval_max_tokens`)."""
        texts = _str_list(texts, "classifier.predict(['a sentence'])")
        return torch.softmax(self._outputs(texts, len(self.labels), max_tokens), dim=-1)


class ClassifierEnsemble(Ensemble, _LabelPredictor):
    """Classifiers of the same label set predicting together: the mean of their class probabilities. Members may
    differ in anything else (architecture, tokenizer, seed; ULMFiT's forward and backward classifiers).

    Args:
        members: the classifiers; their `labels` must be equal (same classes, same order).
    """

    member = Classifier
    rules = ((lambda member: member.labels, "predicts labels {mine}, member 0 predicts {first}; ensemble classifiers "
                                            "trained for the same labels"),)

    def __init__(self, members: Sequence[Classifier]) -> None:
        members = self._join(members)
        self.labels, self.columns = list(members[0].labels), members[0].columns

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean class probabilities of the members, (len(texts), num_classes)."""
        texts = _str_list(texts, "classifier.predict(['a sentence'])")
        return torch.stack([member.probabilities(texts) for member in self.members]).mean(dim=0)
