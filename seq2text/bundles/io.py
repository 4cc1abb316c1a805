"""The model bundle: one copyable directory per trained model.

    <bundle>/config.json        task name, network constructor arguments, data/eval settings, versions
    <bundle>/model.safetensors  weights (no pickled code)
    <bundle>/tokenizer.model    the SentencePiece model (not for forecasters: numbers need none)
    <bundle>/metrics.json       validation/test metrics (with the sacreBLEU signature where there is one)

Bundles are written to a temporary sibling directory and renamed into place (never half-written).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from seq2text.errors import BundleError, ConfigError
from seq2text.text.tokenizer import Tokenizer

__all__ = ["Bundle", "save_bundle", "read_bundle", "read_bundle_config", "export_bundle", "check_bundle_target",
           "bundle_size", "check_derived_target", "save_derived_bundle", "BUNDLE_FILES", "FORMAT_VERSION",
           "SCALE_SUFFIX"]

BUNDLE_FILES = ("config.json", "model.safetensors", "tokenizer.model", "metrics.json")
FORMAT_VERSION = 1
SCALE_SUFFIX = ".int8_scale"  # an int8 matrix `name` of a compressed bundle has its row scales in `name` + this


@dataclass(frozen=True)
class Bundle:
    """What a bundle directory holds, read and checked."""

    path: Path
    task: str
    config: dict
    tokenizer: Tokenizer | None
    metrics: dict
    weights: dict[str, torch.Tensor]


def save_bundle(directory: str | Path, task: str, net_config: dict, weights: dict[str, torch.Tensor],
                tokenizer: Tokenizer | None, metrics: dict, extra: dict | None = None) -> Path:
    """Writes a bundle atomically (temporary directory, then rename) and returns its path; a BundleError where
    `directory` holds something other than a bundle (never overwritten)."""
    directory = Path(directory)
    check_bundle_target(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        config = {"format": FORMAT_VERSION, "task": task, "net": net_config, **(extra or {}),
                  "torch": torch.__version__, "tokenizer": tokenizer.fingerprint if tokenizer is not None else None}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / "model.safetensors"))
        if tokenizer is not None:
            tokenizer.save(tmp / "tokenizer.model")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
        old = directory.with_name(f".{directory.name}.old")  # the bundle replaced, removed once the new one is in place
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def check_bundle_target(directory: str | Path) -> None:
    """Refuses a bundle path that exists and is not a bundle (a bundle is replaced as a whole)."""
    directory = Path(directory)
    if directory.is_file() or (directory.is_dir() and any(p.name not in BUNDLE_FILES for p in directory.iterdir())):
        raise BundleError(f"{directory} exists and is not a seq2text bundle; it is never overwritten: "
                          "choose another bundle path (e.g. --bundle artifacts/NAME)")


def read_bundle_config(directory: str | Path, task: str | None = None) -> tuple[dict, dict]:
    """The checked `config.json` and `metrics.json` of a bundle (not its weights); `task` rejects another task's."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"model bundle {directory} is not a directory; give the folder written by `seq2text fit`")
    missing = [name for name in BUNDLE_FILES if not (directory / name).is_file() and name != "tokenizer.model"]
    if missing:
        raise BundleError(f"model bundle {directory} is missing {', '.join(missing)}; copy the whole bundle "
                          "directory, or export it again")
    try:
        config = json.loads((directory / "config.json").read_text())
        metrics = json.loads((directory / "metrics.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{directory}/config.json or metrics.json is not valid JSON ({error})") from None
    if not isinstance(config, dict) or "task" not in config or "net" not in config:
        raise BundleError(f"{directory}/config.json is not a seq2text bundle config (no task/net entry)")
    if config.get("format", 0) > FORMAT_VERSION:
        raise BundleError(f"{directory} was written by a newer seq2text (format {config['format']}); upgrade")
    if task is not None and config["task"] != task:
        raise BundleError(f"{directory} holds a {config['task']} model, not a {task} model; "
                          f"load it with seq2text.load() or pass a {task} bundle")
    return config, metrics


def read_bundle(directory: str | Path, task: str | None = None) -> Bundle:
    """Reads and checks a bundle (a BundleError names what is wrong); `task` rejects bundles of another task."""
    directory = Path(directory)
    config, metrics = read_bundle_config(directory, task)
    try:
        weights = load_file(str(directory / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(f"{directory}/model.safetensors is truncated or not a safetensors file ({error}); "
                          "bundles never load pickled weights. Export the bundle again") from None
    weights = _float_weights(weights, directory)
    if "tokenizer" in config and config["tokenizer"] is None:  # a forecaster: numbers need no tokenizer
        return Bundle(directory, config["task"], config, None, metrics, weights)
    if not (directory / "tokenizer.model").is_file():
        raise BundleError(f"model bundle {directory} is missing tokenizer.model; copy the whole bundle directory, or "
                          "export it again")
    tokenizer = Tokenizer.load(directory / "tokenizer.model")
    if config.get("tokenizer") not in (None, tokenizer.fingerprint):
        raise BundleError(f"{directory}/tokenizer.model is not the tokenizer this model was trained with")
    return Bundle(directory, config["task"], config, tokenizer, metrics, weights)


def _float_weights(weights: dict[str, torch.Tensor], directory: Path) -> dict[str, torch.Tensor]:
    """The stored weights as float32: half-precision ones widened, int8 matrices multiplied by their row scales."""
    out = {}
    for name, value in weights.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        scale = weights.get(name + SCALE_SUFFIX)
        if value.dtype == torch.int8 and scale is not None:
            if scale.shape != value.shape[:1]:
                raise BundleError(f"{directory}/model.safetensors: {name} has {value.shape[0]} rows but "
                                  f"{scale.numel()} scales; the bundle is corrupt: compress it again")
            value = value.float() * scale.float()[:, None]
        out[name] = value.float() if value.is_floating_point() else value
    return out


def bundle_size(directory: str | Path) -> int:
    """Bytes of a bundle's files."""
    return sum((Path(directory) / name).stat().st_size for name in BUNDLE_FILES if (Path(directory) / name).is_file())


def check_derived_target(source: str | Path, output: str | Path) -> None:
    """Refuses (ConfigError) to write a bundle derived from `source` (averaged, compressed) over `source` itself."""
    if Path(output).resolve() == Path(source).resolve():
        raise ConfigError(f"--output {output} is the source bundle, which would be lost; write to a new directory")


def save_derived_bundle(source: Bundle, output: str | Path, weights: dict[str, torch.Tensor], metrics: dict,
                        **extra: object) -> Path:
    """Writes a copy of `source` (task, network config, tokenizer, other config entries) with new `weights`,
    `metrics` and `extra` config entries."""
    kept = {k: v for k, v in source.config.items() if k not in ("format", "task", "net", "torch", "tokenizer")}
    return save_bundle(output, source.task, source.config["net"], weights, source.tokenizer, metrics, {**kept, **extra})


def export_bundle(task_module: torch.nn.Module, datamodule: object, directory: str | Path, metrics: dict) -> Path:
    """Writes the bundle of a trained task: its network, the data module's tokenizer and settings, the task's
    decoding defaults (`search_config()`) and `metrics`."""
    extra = {"data": datamodule.bundle_config()}
    if hasattr(datamodule, "reading"):  # how the text was read: predictors read it back (seq2text.text.reading)
        extra["reading"] = datamodule.reading.to_dict()
    if hasattr(task_module, "search_config"):
        extra["search"] = task_module.search_config()
    if hasattr(task_module, "bundle_extra"):  # e.g. a text regressor's quantiles
        extra.update(task_module.bundle_extra())
    return save_bundle(directory, task_module.bundle_task, task_module.net.config.to_dict(),
                       task_module.export_state(), datamodule.tokenizer, metrics, extra=extra)
