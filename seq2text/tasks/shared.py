"""The checks of a task that starts from a language-model bundle (its vocabulary, tokenizer and direction)."""

from __future__ import annotations

from dataclasses import dataclass

import pytorch_lightning as pl

from seq2text.errors import ConfigError
from seq2text.text.reading import LMReading

__all__ = ["LMOrigin", "check_lm_origin", "read_lm_bundle"]


def read_lm_bundle(path: str, vocab_size: int) -> object:
    """The language-model bundle at `path` to start from, with as many token ids as the data's tokenizer."""
    from seq2text.bundles.io import read_bundle  # lazy: the bundle module sits above tasks
    bundle = read_bundle(path, task="language_model")
    if bundle.config["net"]["vocab_size"] != vocab_size:
        raise ConfigError(f"the LM bundle {path} has {bundle.config['net']['vocab_size']} token ids but the data's "
                          f"tokenizer has {vocab_size}; set data.tokenizer_model to {path}/tokenizer.model")
    return bundle


@dataclass(frozen=True)
class LMOrigin:
    """The LM bundle a task started from, and so how its text must be read (tokenizer and direction)."""

    path: str
    fingerprint: str
    backward: bool

    @classmethod
    def of(cls, bundle: object, path: str) -> LMOrigin:
        """The origin of a bundle from `seq2text.bundles.io.read_bundle` (a language model's) found at `path`."""
        return cls(path, bundle.tokenizer.fingerprint, LMReading.from_bundle(bundle.config, path).backward)


def check_lm_origin(module: pl.LightningModule, reading: LMOrigin | None) -> None:
    """The trainer's data module must use the tokenizer and direction of the LM bundle `reading` (None: no bundle)."""
    datamodule = getattr(module.trainer, "datamodule", None) if module._trainer is not None else None
    if reading is None or datamodule is None:
        return
    path, backward = reading.path, reading.backward
    tokenizer = getattr(datamodule, "tokenizer", None)
    if tokenizer is not None and tokenizer.fingerprint != reading.fingerprint:
        raise ConfigError(f"the data module's tokenizer is not the one of the LM bundle {path}; set "
                          f"data.tokenizer_model to {path}/tokenizer.model")
    reads_backward = getattr(datamodule, "hparams", {}).get("backward")
    if reads_backward is not None and bool(reads_backward) != backward:
        raise ConfigError(f"the LM bundle {path} is a {'backward' if backward else 'forward'} language model but "
                          f"data.backward is {str(reads_backward).lower()}; set data.backward to "
                          f"{str(backward).lower()}")
