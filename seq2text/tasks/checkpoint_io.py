"""Checkpoints: written so that a kill at any moment leaves the previous file whole, and checked before a resume
(`--ckpt_path`) so that a missing, unsafe, damaged or foreign file gets a clear error."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from seq2text.errors import BundleError, ConfigError
from seq2text.text.textio import atomic_open

__all__ = ["AtomicCheckpointIO", "check_checkpoint"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, syncs it, then renames it over the target (atomic
    within one folder, unlike Lightning's move from the system temporary folder: a kill never leaves a truncated
    `last.ckpt`). Remote paths (`s3://...`) go to Lightning's writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
                        ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_open(path, "wb") as file:
            torch.save(checkpoint, file)


def check_checkpoint(path: str, model: object) -> None:
    """A clear error for a missing, unsafe (pickled objects: `weights_only=True`, as Lightning), damaged or foreign
    `--ckpt_path`, and for recipe settings that differ from the checkpoint's (Lightning resumes with the latter).

    Args:
        path: the `--ckpt_path` value.
        model: the parsed `model` entry of the config (class_path and init_args).
    """
    if not Path(path).is_file():
        raise ConfigError(f"--ckpt_path {path} does not exist; give a .ckpt file written by `seq2text fit` (in "
                          "the checkpoints/ folder of the run's log directory)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise BundleError(f"--ckpt_path {path} holds pickled objects that a safe load refuses (nothing in it was "
                          f"run): {str(error).splitlines()[0]} Use a checkpoint written by seq2text fit") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise BundleError(f"--ckpt_path {path} is truncated or not a PyTorch checkpoint ({error}); use an intact "
                          ".ckpt file (checkpoints are written atomically: an older one is still whole)") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise BundleError(f"--ckpt_path {path} is not a Lightning checkpoint (no state_dict); model bundles are "
                          "loaded with seq2text.load, not resumed")
    saved = dict(checkpoint.get("hyper_parameters") or {})
    saved_class, wanted_class = (str(c or "").rsplit(".", 1)[-1] for c in (saved.pop("_class_path", None),
                                                                          getattr(model, "class_path", None)))
    if saved_class and wanted_class and saved_class != wanted_class:
        raise ConfigError(f"--ckpt_path {path} is a checkpoint of a {saved_class}, but this recipe trains a "
                          f"{wanted_class}; resume with the recipe the checkpoint was trained with")
    wanted = _flat(getattr(model, "init_args", None) or {})
    unknown = sorted(k for k in saved if not k.startswith("_") and not any(w.split(".")[0] == k for w in wanted))
    if wanted and unknown:
        raise ConfigError(f"--ckpt_path {path} holds settings this task no longer takes: {', '.join(unknown)} (the "
                          "flat keys from before they were grouped into optim, network...); it cannot be resumed by "
                          "this version: start a new run")
    differ = [f"model.init_args.{k}={wanted[k]} (checkpoint: {v})" for k, v in _flat(saved).items()
              if wanted.get(k) is not None and not k.startswith("_") and wanted[k] != v]
    if differ:
        raise ConfigError(f"--ckpt_path {path} was trained with other model settings than the recipe and overrides "
                          f"give: {'; '.join(differ[:6])}. A resumed run keeps the checkpoint's settings: drop "
                          "these overrides (or start a new run without --ckpt_path)")


def _flat(values: object, prefix: str = "") -> dict[str, object]:
    """A config's init_args (a Namespace) or a checkpoint's hyperparameters as `group.key` → value (tuples as lists)."""
    flat = {}
    for key, value in (vars(values) if hasattr(values, "as_dict") else dict(values)).items():
        if isinstance(value, dict) or hasattr(value, "as_dict"):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = [*value] if isinstance(value, tuple) else value
    return flat
