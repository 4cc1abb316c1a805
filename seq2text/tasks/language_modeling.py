"""LanguageModelTask: stateful truncated BPTT, AWD-LSTM training (AR/TAR, NT-ASGD), word-level perplexity."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch.utils._pytree import tree_leaves, tree_map

from seq2text.data.batches import LMBatch
from seq2text.errors import ConfigError
from seq2text.nn.config import config_from
from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.rnn import RNNType
from seq2text.tasks.base import Task
from seq2text.tasks.shared import LMOrigin, check_lm_origin, check_lm_vocab

__all__ = ["LanguageModelTask"]

_ARCHITECTURE = ("emb_size", "hidden_size", "num_layers", "rnn_type", "tie_weights", "adaptive_cutoffs",
                 "between_layers")


class LanguageModelTask(Task):
    """Trains an `RNNLanguageModel`; reports word-level perplexity (summed NLL / (words + eos)).

    Network args are those of `RNNLanguageModel`. Training args:

    Args:
        optimizer: `sgd` (AWD-LSTM), `adam` or `adamw`.
        lr: peak learning rate.
        weight_decay: L2 (sgd, adam) or decoupled (adamw) weight decay.
        momentum: SGD momentum.
        lr_schedule: `plateau` (divide by 1/plateau_factor when validation stops improving), `constant`,
            `cosine` / `linear` annealing to the end of training (the wall-clock budget if one is set), or
            `slanted_triangular` (ULMFiT's target-domain LM fine-tuning).
        warmup_steps: linear warm-up steps.
        min_lr_ratio: floor of the cosine/linear schedules, as a share of `lr`.
        plateau_factor: learning-rate factor applied on a plateau.
        asgd: NT-ASGD: start averaging the weights when validation has not improved for `nonmono` epochs;
            evaluation and the exported bundle use the averaged weights.
        nonmono: NT-ASGD's non-monotone interval.
        alpha: activation regularization (AR) weight.
        beta: temporal activation regularization (TAR) weight.
        pretrained_lm: a language-model bundle to start from (ULMFiT's target-domain fine-tuning stage): its
            weights, and its architecture (emb/hidden sizes, layers, cell, tying, adaptive cutoffs), which
            replace those given here. The data module must use the bundle's tokenizer and read text in its
            direction, `data.backward` (both checked).
        between_layers: normalisation between recurrent layers (`none`, `layernorm` or `batchnorm`), see
            `RNNStack`.
    """

    bundle_task = "language_model"

    def __init__(
        self,
        vocab_size: int,
        emb_size: int = 400,
        hidden_size: int = 1150,
        num_layers: int = 3,
        rnn_type: RNNType = "lstm",
        dropout: float = 0.4,
        dropout_hidden: float = 0.3,
        dropout_input: float = 0.65,
        dropout_embedding: float = 0.1,
        weight_dropout: float = 0.5,
        tie_weights: bool = True,
        adaptive_cutoffs: list[int] | None = None,
        optimizer: Literal["sgd", "adam", "adamw"] = "sgd",
        lr: float = 30.0,
        weight_decay: float = 1.2e-6,
        momentum: float = 0.0,
        lr_schedule: Literal["plateau", "constant", "cosine", "linear", "slanted_triangular"] = "plateau",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        plateau_factor: float = 0.25,
        asgd: bool = False,
        nonmono: int = 5,
        alpha: float = 2.0,
        beta: float = 1.0,
        pretrained_lm: str | None = None,
        between_layers: BetweenLayers = "none",
    ) -> None:
        super().__init__()
        start = _read_lm_bundle(pretrained_lm, vocab_size) if pretrained_lm else None
        self.save_hyperparameters()
        if start is not None:  # the architecture is the language model's
            net = {"between_layers": "none", **start.config["net"]}  # bundles from before between_layers
            self.hparams.update({k: net[k] for k in _ARCHITECTURE})
        _check_ranges(dropout=dropout, dropout_hidden=dropout_hidden, dropout_input=dropout_input,
                      dropout_embedding=dropout_embedding, weight_dropout=weight_dropout)
        if lr <= 0 or weight_decay < 0 or alpha < 0 or beta < 0 or not 0 < plateau_factor <= 1:
            raise ConfigError("model: lr must be > 0, weight_decay/alpha/beta ≥ 0 and plateau_factor in (0, 1]")
        config = config_from(LMConfig, {**self.hparams, "adaptive_cutoffs": self.hparams.adaptive_cutoffs or ()},
                             strict=False)
        if min(config.emb_size, config.hidden_size, config.num_layers, vocab_size) < 1:
            raise ConfigError("model: vocab_size, emb_size, hidden_size and num_layers must be positive")
        cutoffs = list(config.adaptive_cutoffs)
        if cutoffs and (sorted(set(cutoffs)) != cutoffs or cutoffs[0] < 1 or cutoffs[-1] >= vocab_size):
            raise ConfigError(f"model.adaptive_cutoffs={cutoffs} must increase strictly and stay below the "
                              f"vocabulary size {vocab_size}; use [] for a full softmax")
        self.net = RNNLanguageModel(config)
        self._lm_origin = LMOrigin.of(start, pretrained_lm) if start is not None else None
        if start is not None:
            self.net.load_state_dict(start.weights)
            rank_zero_info(f"language model: starting from {pretrained_lm} ({config.emb_size}/{config.hidden_size}, "
                           f"{config.num_layers} {config.rnn_type} layers)")
        self._state: dict[str, list | None] = {}
        self._resumed_state: list | None = None  # the training hidden state of a checkpoint being resumed
        self._lr_factor = 1.0
        self._val_history: list[float] = []
        self._average: dict[str, torch.Tensor] | None = None
        self._averaged_steps = 0
        self._backup: dict[str, torch.Tensor] | None = None

    def setup(self, stage: str) -> None:
        """Checks that the data module uses the tokenizer and direction of the LM bundle this model started from."""
        check_lm_origin(self, self._lm_origin)

    # ------------------------------------------------------------------------------------------ steps
    def _forward(self, batch: LMBatch, stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Runs one window, carrying the recurrent state of `stage`; returns features, raw output, NLL."""
        state = None if batch.reset else self._state.get(stage)
        features, hidden, raw = self.net(batch.input, state)  # (B, T, E)
        self._state[stage] = self.net.detach(hidden)
        nll = self.net.nll(features, batch.target) * batch.mask  # (B, T)
        return features, raw, nll

    def training_step(self, batch: LMBatch, batch_idx: int) -> torch.Tensor:
        features, raw, nll = self._forward(batch, "train")
        tokens = batch.mask.sum().clamp(min=1)
        loss = nll.sum() / tokens
        objective = loss
        if self.hparams.alpha:
            objective = objective + self.hparams.alpha * features.float().pow(2).mean()
        if self.hparams.beta and raw.size(1) > 1:
            objective = objective + self.hparams.beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=int(tokens))
        self.log("train/ppl", torch.exp(loss.detach()), batch_size=int(tokens))
        return objective

    def _eval_step(self, batch: LMBatch, stage: str) -> None:
        _, _, nll = self._forward(batch, stage)
        self.add_sums(stage, nll.double().sum(), batch.mask.sum())

    # ------------------------------------------------------------------------------------------ metrics
    def _eval_metrics(self, stage: str) -> dict[str, float]:
        """Gathers NLL sums from every process; each token counted once (padding is masked)."""
        sums = self.gathered_sums(stage, 2)
        total_nll, tokens = float(sums[0]), max(float(sums[1]), 1.0)
        split = {"val": "valid", "test": "test"}[stage]
        datamodule = getattr(self.trainer, "datamodule", None)
        words = getattr(datamodule, "num_words", {}).get(split, tokens)
        chars = getattr(datamodule, "num_chars", {}).get(split)
        fraction = self.validation_fraction() if stage == "val" else 1.0
        if fraction < 1.0:  # a pass cut by --budget: its words and characters, pro rata of its batches
            words, chars = words * fraction, chars * fraction if chars else chars
        metrics = {f"{stage}/loss": total_nll / tokens, f"{stage}/ppl": math.exp(min(total_nll / words, 700.0)),
                   f"{stage}/tokens": tokens, f"{stage}/words": float(words)}
        if chars:
            metrics[f"{stage}/bpc"] = total_nll / math.log(2) / chars
        return metrics

    def on_validation_epoch_end(self) -> None:
        metrics = self._eval_metrics("val")
        self.log("val/ppl", metrics.pop("val/ppl"), prog_bar=True)
        self.log_dict(metrics)
        if not self.trainer.sanity_checking and self.trainer.state.fn == "fit":
            self._after_validation(metrics["val/loss"])

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._eval_metrics("test"))

    def _after_validation(self, val_loss: float) -> None:
        """Plateau decay and the NT-ASGD trigger."""
        history = self._val_history
        if self.hparams.lr_schedule == "plateau" and history and val_loss > min(history):
            self._lr_factor *= self.hparams.plateau_factor
        n = self.hparams.nonmono
        if self.hparams.asgd and self._average is None and len(history) > n and val_loss > min(history[:-n]):
            self._average = {k: p.detach().clone() for k, p in self.net.named_parameters()}
            self._averaged_steps = 1
        history.append(val_loss)

    # ------------------------------------------------------------------------------------------ state
    def on_train_start(self) -> None:
        # a run resumed mid-epoch goes on with the hidden state its checkpoint carried (Lightning does not call
        # on_train_epoch_start for the interrupted epoch; when it starts a new epoch, that resets the state)
        resumed, self._resumed_state = self._resumed_state, None
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if resumed is not None and all(t.size(0) == world for t in tree_leaves(resumed)):
            self._state["train"] = tree_map(lambda t: t[rank].to(self.device), resumed)
        else:
            if resumed is not None:
                rank_zero_warn("the checkpoint's hidden states are for another number of processes: the resumed "
                               "epoch starts from a zero state")
            self._state.pop("train", None)

    def on_train_epoch_start(self) -> None:
        self._state.pop("train", None)
        super().on_train_epoch_start()

    def on_validation_epoch_start(self) -> None:
        self._state.pop("val", None)
        self._swap_in_average()

    def on_validation_end(self) -> None:
        self._swap_out_average()

    def on_test_epoch_start(self) -> None:
        self._state.pop("test", None)
        self._swap_in_average()

    def on_test_end(self) -> None:
        self._swap_out_average()

    def _swap_in_average(self) -> None:
        if self._average is not None and self._backup is None:
            self._backup = {k: p.detach().clone() for k, p in self.net.named_parameters()}
            with torch.no_grad():
                for k, p in self.net.named_parameters():
                    p.copy_(self._average[k])

    def _swap_out_average(self) -> None:
        if self._backup is not None:
            with torch.no_grad():
                for k, p in self.net.named_parameters():
                    p.copy_(self._backup[k])
            self._backup = None

    def export_state(self) -> dict[str, torch.Tensor]:
        """The weights to ship: the NT-ASGD average if averaging started, else the current weights."""
        if self._average is None:
            return super().export_state()
        return {k: v.detach().float().cpu().contiguous() for k, v in self._average.items()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seq2text"] = {"lr_factor": self._lr_factor, "val_history": self._val_history,
                                  "average": self._average, "averaged_steps": self._averaged_steps,
                                  "state": self._gathered_train_state()}

    def _gathered_train_state(self) -> object:
        """The training hidden state of every process, stacked along a new first (rank) dimension; every rank
        calls this (Lightning builds checkpoints on all ranks), so that each shard resumes with its own state."""
        state = self._state.get("train")
        if state is None:
            return None
        if self.trainer.world_size == 1:
            return tree_map(lambda t: t.detach().unsqueeze(0), state)
        return tree_map(lambda t: self.all_gather(t.detach()), state)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        extra = checkpoint.get("seq2text", {})
        self._lr_factor = extra.get("lr_factor", 1.0)
        self._val_history = list(extra.get("val_history", []))
        self._average = extra.get("average")
        self._averaged_steps = extra.get("averaged_steps", 0)
        self._resumed_state = extra.get("state")

    # ------------------------------------------------------------------------------------------ optimization
    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        if hp.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        return self.make_adam(self.parameters(), hp.optimizer == "adamw", lr=hp.lr, weight_decay=hp.weight_decay,
                              betas=(0.9, 0.999))

    def lr_factor(self) -> float:
        """The plateau decays so far (the learning rate before the variable-BPTT factor is current_lr())."""
        return self._lr_factor

    def apply_lr(self, batch: LMBatch) -> None:
        lr = self.current_lr() * batch.lr_scale  # AWD-LSTM: scaled by seq_len / bptt
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = lr

    def _update_average(self) -> None:
        """One step of the running (Polyak) average of NT-ASGD."""
        self._averaged_steps += 1
        with torch.no_grad():
            for k, p in self.net.named_parameters():
                self._average[k].add_(p.detach() - self._average[k], alpha=1.0 / self._averaged_steps)

    def on_train_batch_end(self, outputs: object, batch: LMBatch, batch_idx: int) -> None:
        if self._average is not None:
            self._update_average()
        super().on_train_batch_end(outputs, batch, batch_idx)

    def throughput_metrics(self, batch: LMBatch, seconds: float) -> dict[str, float]:
        return {"train/tokens_per_sec": batch.input.numel() / seconds}


def _read_lm_bundle(path: str, vocab_size: int) -> object:
    """The LM bundle to start from, checked against the data's vocabulary."""
    from seq2text.bundles.io import read_bundle  # lazy: the bundle module sits above tasks

    bundle = read_bundle(path, task="language_model")
    check_lm_vocab(bundle.config["net"]["vocab_size"], vocab_size, path)
    return bundle


def _check_ranges(**probabilities: float) -> None:
    for name, value in probabilities.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"model.{name}={value} is out of range; a dropout probability lies in [0, 1)")
