"""LanguageModelTask: stateful truncated BPTT, AWD-LSTM training (AR/TAR, NT-ASGD), word-level perplexity."""

from __future__ import annotations

from dataclasses import asdict

import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch.utils._pytree import tree_leaves, tree_map

from seq2text.data.batches import LMBatch
from seq2text.errors import ConfigError
from seq2text.nn.config import config_from
from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.rnn import RNNType
from seq2text.predict.metrics import lm_scores, lm_sums
from seq2text.tasks.base import Task, shipped
from seq2text.tasks.config import Optimization, Regularization
from seq2text.tasks.shared import LMOrigin, check_lm_origin, read_lm_bundle

__all__ = ["LanguageModelTask"]

_ARCHITECTURE = ("emb_size", "hidden_size", "num_layers", "rnn_type", "tie_weights", "adaptive_cutoffs",
                 "between_layers")


class LanguageModelTask(Task):
    """Trains an `RNNLanguageModel`; reports word-level perplexity (summed NLL / (words + eos)).

    Args:
        vocab_size: tokenizer size (linked from `data.vocab_size` by the CLI).
        emb_size, hidden_size, num_layers, rnn_type, tie_weights, adaptive_cutoffs, between_layers: the
            architecture, see `LMConfig`.
        regularization: dropouts, AR/TAR and NT-ASGD (`seq2text.tasks.config.Regularization`).
        optim: see `Optimization`; `sgd` and the `plateau` schedule apply here too.
        pretrained_lm: a language-model bundle to start from (ULMFiT's target-domain fine-tuning): its weights and
            architecture (replacing the one given); the data must use its tokenizer and direction (checked).
    """

    bundle_task = "language_model"

    def __init__(
        self,
        vocab_size: int,
        emb_size: int = 400,
        hidden_size: int = 1150,
        num_layers: int = 3,
        rnn_type: RNNType = "lstm",
        tie_weights: bool = True,
        adaptive_cutoffs: list[int] | None = None,
        between_layers: BetweenLayers = "none",
        regularization: Regularization = Regularization(),
        optim: Optimization = Optimization("sgd", 30.0, 1.2e-6, lr_schedule="plateau"),
        pretrained_lm: str | None = None,
    ) -> None:
        super().__init__(optim, language_model=True)
        regularization.check()
        self.regularization = regularization
        start = read_lm_bundle(pretrained_lm, vocab_size) if pretrained_lm else None
        self.save_settings()
        if start is not None:  # the architecture is the language model's
            net = {"between_layers": "none", **start.config["net"]}  # bundles from before between_layers
            self.hparams.update({k: net[k] for k in _ARCHITECTURE})
        values = {**self.hparams, **asdict(regularization), "adaptive_cutoffs": self.hparams.adaptive_cutoffs or ()}
        config = config_from(LMConfig, values, strict=False)
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
        self._lr_factor, self._val_history, self._averaged_steps = 1.0, [], 0
        self._average: dict[str, torch.Tensor] | None = None  # NT-ASGD's running average, once started
        self._backup: dict[str, torch.Tensor] | None = None  # the current weights while the average is swapped in

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
        objective = loss = nll.sum() / tokens
        reg = self.regularization
        if reg.alpha:
            objective = objective + reg.alpha * features.float().pow(2).mean()
        if reg.beta and raw.size(1) > 1:
            objective = objective + reg.beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=int(tokens))
        self.log("train/ppl", torch.exp(loss.detach()), batch_size=int(tokens))
        return objective

    def _eval_step(self, batch: LMBatch, stage: str) -> None:
        _, _, nll = self._forward(batch, stage)
        self.add_sums(stage, *lm_sums(nll, batch.mask))

    # ------------------------------------------------------------------------------------------ metrics
    def _eval_metrics(self, stage: str) -> dict[str, float]:
        """Gathers NLL sums from every process; each token counted once (padding is masked)."""
        sums = self.gathered_sums(stage, 2)  # NLL, tokens (lm_sums)
        split = {"val": "valid", "test": "test"}[stage]
        datamodule = getattr(self.trainer, "datamodule", None)
        words = getattr(datamodule, "num_words", {}).get(split)
        chars = getattr(datamodule, "num_chars", {}).get(split)
        fraction = self.validation_fraction() if stage == "val" else 1.0
        if fraction < 1.0:  # a pass cut by --budget: its words and characters, pro rata of its batches
            words, chars = words * fraction if words else words, chars * fraction if chars else chars
        return {f"{stage}/{name}": value for name, value in lm_scores(sums, words, chars).items()}

    def _log_eval(self, stage: str) -> None:
        metrics = self._eval_metrics(stage)
        self.log(f"{stage}/ppl", metrics.pop(f"{stage}/ppl"), prog_bar=stage == "val")
        self.log_dict(metrics)
        if stage == "val" and not self.trainer.sanity_checking and self.trainer.state.fn == "fit":
            self._after_validation(metrics["val/loss"])

    def _after_validation(self, val_loss: float) -> None:
        """Plateau decay and the NT-ASGD trigger."""
        history = self._val_history
        if self.optim.lr_schedule == "plateau" and history and val_loss > min(history):
            self._lr_factor *= self.optim.plateau_factor
        n = self.regularization.nonmono
        if self.regularization.asgd and self._average is None and len(history) > n and val_loss > min(history[:-n]):
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
        """The NT-ASGD average (if any) becomes the weights of an evaluation pass."""
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
        return shipped(self._average)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seq2text"] = {"lr_factor": self._lr_factor, "val_history": self._val_history,
                                  "average": self._average, "averaged_steps": self._averaged_steps,
                                  "state": self._gathered_train_state()}

    def _gathered_train_state(self) -> object:
        """The training hidden state of every process, stacked along a new first (rank) dimension; every rank
        calls this (Lightning builds checkpoints on all ranks), so that each shard resumes with its own state."""
        state, alone = self._state.get("train"), self.trainer.world_size == 1
        gather = (lambda t: t.detach().unsqueeze(0)) if alone else (lambda t: self.all_gather(t.detach()))
        return None if state is None else tree_map(gather, state)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        extra = checkpoint.get("seq2text", {})
        self._lr_factor, self._val_history = extra.get("lr_factor", 1.0), list(extra.get("val_history", []))
        self._average, self._averaged_steps = extra.get("average"), extra.get("averaged_steps", 0)
        self._resumed_state = extra.get("state")

    # ------------------------------------------------------------------------------------------ optimization
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
