"""Checkpoint averaging: the mean of the weights of a run's last checkpoints, written as a bundle.

Averaging the last N epochs' weights (Junczys-Dowmunt et al., 2016; as fairseq and Joey NMT do) often gains a
little BLEU at no decoding cost. A checkpoint holds no tokenizer or reading spec, so the new bundle is a bundle of
the same run with the averaged weights.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2text.bundles.io import check_derived_target, read_bundle, save_derived_bundle
from seq2text.errors import BundleError, ConfigError

__all__ = ["average_checkpoints", "find_checkpoints"]

NET_PREFIX = "net."  # the tasks keep their network as `self.net`


@dataclass(frozen=True)
class _Checkpoint:
    path: Path
    epoch: int
    step: int
    weights: dict[str, torch.Tensor]


def find_checkpoints(paths: Sequence[str | Path]) -> list[Path]:
    """The `.ckpt` files named by `paths` (files, or directories searched recursively), without duplicates."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob("*.ckpt")))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"checkpoint path {path} does not exist; give .ckpt files or the checkpoints/ folder of "
                              "a run (runs/NAME/version_K/checkpoints)")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ConfigError(f"no .ckpt file in {', '.join(map(str, paths))}; keep several checkpoints while training "
                          "(add --config recipes/overlays/keep_last_5.yaml to `seq2text fit`)")
    return unique


def _read_checkpoint(path: Path) -> _Checkpoint:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise BundleError(f"{path} is truncated or not a safe PyTorch checkpoint ({str(error).splitlines()[0]}); "
                          "leave it out or use an intact .ckpt written by seq2text fit") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise BundleError(f"{path} is not a Lightning checkpoint (no state_dict); give .ckpt files of `seq2text fit`")
    weights = {k[len(NET_PREFIX):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(NET_PREFIX)}
    return _Checkpoint(path, int(checkpoint.get("epoch", -1)), int(checkpoint.get("global_step", -1)), weights)


def _check_fits(checkpoint: _Checkpoint, reference: dict[str, torch.Tensor], bundle: Path) -> None:
    """Refuses a checkpoint whose network is not the bundle's (other keys or shapes)."""
    missing = sorted(reference.keys() - checkpoint.weights.keys())
    extra = sorted(checkpoint.weights.keys() - reference.keys())
    wrong = [k for k in reference.keys() & checkpoint.weights.keys()
             if tuple(reference[k].shape) != tuple(checkpoint.weights[k].shape)]
    if missing or extra or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                  else f"{wrong[0]} is {tuple(checkpoint.weights[wrong[0]].shape)} in the checkpoint, "
                       f"{tuple(reference[wrong[0]].shape)} in the bundle")
        raise BundleError(f"{checkpoint.path} is not a checkpoint of the network in {bundle} ({detail}); average "
                          "checkpoints of the run that wrote the bundle")


def average_checkpoints(bundle: str | Path, checkpoints: Sequence[str | Path], output: str | Path,
                        last: int | None = None) -> Path:
    """Averages the weights of `checkpoints` (.ckpt files or folders; the `last` newest by epoch and step, or all)
    into a new bundle at `output` (never the source) and returns its path; `bundle`, a bundle of the same run,
    gives the task, tokenizer, reading spec and network config."""
    if last is not None and last < 1:
        raise ConfigError(f"--last must be at least 1, got {last}")
    check_derived_target(bundle, output)
    source = read_bundle(bundle)
    found = sorted(map(_read_checkpoint, find_checkpoints(checkpoints)), key=lambda c: (c.epoch, c.step))
    chosen = found[-last:] if last else found
    for checkpoint in chosen:
        _check_fits(checkpoint, source.weights, source.path)
    metrics = {k: v for k, v in source.metrics.items() if not k.startswith(("val/", "test/"))}  # scores of one model
    metrics["averaged_checkpoints"] = [{"file": c.path.name, "epoch": c.epoch, "step": c.step} for c in chosen]
    metrics["averaged_from_bundle"] = str(source.path)
    # float tensors: the mean, accumulated in float64, stored in float32; others: the newest checkpoint's
    mean = {key: (sum(c.weights[key].double() for c in chosen) / len(chosen)).float() if value.is_floating_point()
            else value.clone() for key, value in chosen[-1].weights.items()}
    return save_derived_bundle(source, output, mean, metrics)
