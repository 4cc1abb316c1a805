"""`seq2text.load`: any bundle (or Hub address) to the predictor of its task; a list of bundles to an ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2text.bundles.io import read_bundle_config
from seq2text.errors import BundleError

__all__ = ["load"]


def load(path: str | Path | Sequence[str | Path], task: str | None = None) -> object:
    """Loads any seq2text bundle and returns the predictor of its task (`LanguageModel`, `Classifier`, ...); a list
    of bundles of one task gives that task's ensemble, a list of one its predictor. `task`: the task the bundles
    must hold (None: any).

    Raises:
        BundleError: a missing or broken bundle, a task this version does not know, another task than `task`, or
            members of different tasks (naming both).
    """
    from seq2text.bundles.hub import resolve  # "hf://user/repo[@revision]": the repo's snapshot in the HF cache
    from seq2text.registry import task_parts
    if not isinstance(path, str | Path) and len(path) == 1:
        path = path[0]
    if isinstance(path, str | Path):
        path = resolve(path)
        config, _ = read_bundle_config(path, task)  # the task only: the predictor reads weights and tokenizer once
        return task_parts(config["task"], str(path)).predictor.load(path)
    paths = [resolve(item) for item in path]
    if not paths:
        raise BundleError("seq2text.load([]) got no bundle; pass a bundle directory or a list of them")
    return task_parts(_members_task(paths, task), str(paths[0])).ensemble.load(paths)


def _members_task(paths: Sequence[str | Path], task: str | None) -> str:
    """The task every member holds (`task`, if given); a member of another task (or a broken one) is named by its
    number."""
    for number, path in enumerate(paths):
        try:
            config, _ = read_bundle_config(path, task=task)
        except BundleError as error:
            raise BundleError(f"ensemble member {number}: {error} (an ensemble's members hold one task)") from None
        task = config["task"]
    return task
