"""What the predictors share: the network read from a bundle, the check of texts, a classifier-shaped network over
texts (`_TextHead`) and every ensemble's one rule (`Ensemble`). No Lightning is imported here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from seq2text.bundles.compression import quantize_network
from seq2text.bundles.io import Bundle, read_bundle
from seq2text.errors import BundleError, ConfigError
from seq2text.nn.config import config_from
from seq2text.predict.metrics import str_list
from seq2text.text.reading import pad_ids

MEMBERS = "members."  # the prefix of the weights of a bundle's further members (a tuned forecaster's ensemble)


def _read(path: str | Path, task: str, module_class: type[torch.nn.Module], config_class: type
          ) -> tuple[Bundle, torch.nn.Module]:
    """The bundle of `task` at `path` and its network (eval mode; quantised for an int8 bundle)."""
    bundle = read_bundle(path, task=task)
    weights = {k: v for k, v in bundle.weights.items() if not k.startswith(MEMBERS)}
    return bundle, _network(bundle, module_class, config_class, bundle.config["net"], weights)


def _network(bundle: Bundle, module_class: type[torch.nn.Module], config_class: type, config: dict,
             weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    """One network of `bundle` from its `config` and `weights` (eval mode; quantised for an int8 bundle)."""
    try:
        net = module_class(config_from(config_class, config))
        net.load_state_dict(weights, strict=True)
    except (TypeError, ValueError, RuntimeError) as error:
        raise BundleError(f"{bundle.path}: the weights do not fit the configured network ({error}); "
                          "the bundle is corrupt or mixes files of two models") from None
    int8 = (bundle.config.get("compression") or {}).get("kind") == "int8"  # seq2text compress --int8
    return quantize_network(net.eval()) if int8 else net.eval()


def _str_list(texts: Sequence[str], example: str) -> list[str]:
    """`texts` as a list of strings; `example` shows the right call in the TypeError."""
    return str_list(texts, "texts", f"pass a list of strings, e.g. {example}")


Rule = tuple[Callable[[Any], object], str]
"""What ensemble members must agree on: (a member's value, what a member whose value differs from member 0's is
told; `{mine}` and `{first}` in it show the two values)."""

SAME_TOKENIZER: Rule = (lambda member: member.tokenizer.fingerprint, "was trained with another tokenizer than member "
                        "0; these ensembles mix next-token probabilities over one shared vocabulary: train the members "
                        "on the same data with the same tokenizer options")
SAME_QUANTILES: Rule = (lambda member: member.quantiles, "predicts quantiles {mine}, member 0 {first}; ensemble "
                        "models trained for the same quantiles")


class Ensemble:
    """Every task's ensemble: `load(paths)` reads one `member` bundle per path (a failing one named by its number);
    the constructor takes at least one member (`_join`), each agreeing with member 0 on the subclass' `rules`. Its
    `task` is the members' and its `metrics` `{"members": [each member's]}`."""

    member: type
    rules: tuple[Rule, ...] = ()

    def __init_subclass__(cls) -> None:
        cls.task = cls.member.task

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> Any:  # noqa: ANN401 - the subclass
        """Loads one member bundle per path (a list of directories) and checks that they combine.
        Raises:
            BundleError: a broken member, one of another task, or one that does not agree with member 0.
        """
        if isinstance(paths, str | Path):
            raise TypeError(f"pass a list of bundle directories, e.g. {cls.__name__}.load(['a', 'b'])")
        members = []
        for number, path in enumerate(paths):
            try:
                members.append(cls.member.load(path))
            except BundleError as error:
                raise BundleError(f"ensemble member {number}: {error} (only {cls.member.task} bundles form these "
                                  "ensembles)") from None
        return cls(members)

    def _join(self, members: Sequence[Any]) -> list:
        """Keeps `members` (as `self.members`, and their metrics) once checked.
        Raises:
            ConfigError: no members.
            BundleError: a member that differs from member 0 in a rule's value, named by its number.
        """
        self.members = list(members)
        if not self.members:
            raise ConfigError(f"an ensemble needs at least one member: give a list of {self.member.__name__}s")
        for number, member in enumerate(self.members[1:], start=1):
            for value, problem in self.rules:
                mine, first = value(member), value(self.members[0])
                if mine != first:
                    raise BundleError(f"ensemble member {number} {problem.format(mine=mine, first=first)}")
        self.metrics = {"members": [member.metrics for member in self.members]}
        return self.members


class _TextHead:
    """A classifier-shaped network (`RNNClassifier`: a classifier's or a regressor's) over texts read as in training
    by its `ClassifierReading`."""

    net: torch.nn.Module
    tokenizer: Any
    reading: Any

    @property
    def backward(self) -> bool:
        return self.reading.backward

    @property
    def columns(self) -> tuple[str, str]:
        """The (text, label or target) columns of the training files: the defaults of `seq2text evaluate`."""
        return self.reading.text_column, self.reading.label_column

    @torch.inference_mode()
    def _outputs(self, texts: list[str], width: int, max_tokens: int | None) -> torch.Tensor:
        """The network's outputs, (len(texts), width) float32, in batches of at most `max_tokens` padded tokens."""
        ids = self.reading.encode(self.tokenizer, texts)
        out = torch.empty(len(ids), width)
        for rows in self.reading.batches(ids, max_tokens):
            text, lengths = pad_ids([ids[i] for i in rows])  # (B, T), (B,)
            out[rows] = self.net(text, lengths).float()  # (B, width)
        return out
