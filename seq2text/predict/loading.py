"""`seq2text.load`: any bundle (or Hub address) to the predictor of its task; a list of bundles to an ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2text.bundles.io import read_bundle_config
from seq2text.errors import BundleError

__all__ = ["load"]


def load(path: str | Path | Sequence[str | Path]) -> object:
    """Loads any seq2text bundle and returns the predictor of its task (`LanguageModel`, `Classifier`,
    `Regressor`, `Translator`, `Forecaster`); a list of bundles of one task gives that task's ensemble
    (`ClassifierEnsemble`, `TranslatorEnsemble`, `ForecasterEnsemble`), and a list of one bundle its predictor.

    Raises:
        BundleError: a missing or broken bundle, a task this version does not know, members of different tasks
            (naming both), or several bundles of a task that has no ensemble.
    """
    from seq2text.bundles.hub import resolve  # "hf://user/repo[@revision]": the repo's snapshot in the HF cache
    from seq2text.registry import task_parts

    if isinstance(path, str | Path):
        path = resolve(path)
        config, _ = read_bundle_config(path)  # the task only: the predictor reads weights and tokenizer once
        return task_parts(config["task"], str(path)).predictor.load(path)
    paths = [resolve(item) for item in path]
    if not paths:
        raise BundleError("seq2text.load([]) got no bundle; pass a bundle directory or a list of them")
    if len(paths) == 1:
        return load(paths[0])
    task = _members_task(paths)
    parts = task_parts(task, str(paths[0]))
    if parts.ensemble is None:
        raise BundleError(f"{len(paths)} {task} bundles given, and {task} models have no ensemble; load them one "
                          "at a time")
    return parts.ensemble.load(paths)


def _members_task(paths: Sequence[str | Path]) -> str:
    """The task every member holds; a member of another task (or a broken one) is named by its number."""
    task = None
    for number, path in enumerate(paths):
        try:
            config, _ = read_bundle_config(path, task=task)
        except BundleError as error:
            raise BundleError(f"ensemble member {number}: {error} (an ensemble's members hold one task)") from None
        task = config["task"]
    return task
