"""What the predictors share: the network built from a bundle (quantised for an int8 bundle), the check that
texts are a list of strings, and the loading of an ensemble's members. No Lightning is imported here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.bundles.compression import quantize_network
from seq2text.bundles.io import Bundle
from seq2text.errors import BundleError
from seq2text.nn.config import config_from


def _build(bundle: Bundle, module_class: type[torch.nn.Module], config_class: type) -> torch.nn.Module:
    try:
        net = module_class(config_from(config_class, bundle.config["net"]))
        net.load_state_dict(bundle.weights, strict=True)
    except (TypeError, ValueError, RuntimeError) as error:
        raise BundleError(f"{bundle.path}: the weights do not fit the configured network ({error}); "
                          "the bundle is corrupt or mixes files of two models") from None
    if (bundle.config.get("compression") or {}).get("kind") == "int8":  # seq2text compress --int8
        return quantize_network(net.eval())
    return net.eval()


def _str_list(texts: Sequence[str], example: str) -> list[str]:
    """`texts` as a list, checked to hold strings only; `example` shows the right call in the TypeError."""
    if isinstance(texts, str):
        raise TypeError(f"pass a list of strings, e.g. {example}")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] is {type(texts[bad]).__name__}, not str")
    return texts


def _load_members(predictor: type, paths: Sequence[str | Path], kind: str) -> list:
    """One `predictor` per bundle path, for an ensemble; a failing member is named by its number."""
    if isinstance(paths, str | Path):
        raise TypeError(f"pass a list of bundle directories, e.g. {predictor.__name__}Ensemble.load(['a', 'b'])")
    members = []
    for number, path in enumerate(paths):
        try:
            members.append(predictor.load(path))
        except BundleError as error:
            raise BundleError(f"ensemble member {number}: {error} (only {kind} form these ensembles)") from None
    return members
