"""ClassificationTask: (bi)LSTM/GRU text classifiers, from scratch or fine-tuned from an LM bundle (ULMFiT)."""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from seq2text.data.batches import ClassificationBatch
from seq2text.errors import ConfigError, DataError
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.nn.config import config_from
from seq2text.tasks.base import Task
from seq2text.tasks.config import ClassifierNetwork, FineTuning, Optimization
from seq2text.tasks.schedule import epochs_done, step_progress, training_progress
from seq2text.tasks.shared import LMOrigin, check_lm_origin, read_lm_bundle
from seq2text.text.vectors import load_word_vectors

__all__ = ["ClassificationTask"]


class ClassificationTask(Task):
    """Trains an `RNNClassifier`; reports accuracy, macro-F1 and (test) the confusion matrix.

    Args:
        vocab_size: tokenizer size (linked from `data.vocab_size` by the CLI).
        num_classes: number of labels; None takes it from the data module's labels (checked when given).
        labels: the class names in index order; None takes the data module's (checked when given).
        network: the architecture and dropouts (`seq2text.tasks.config.ClassifierNetwork`).
        fine_tuning: discriminative learning rates, gradual unfreezing, label smoothing, distillation.
        optim: see `Optimization` (`lr` is the head's).
        pretrained_lm: a language-model bundle whose embedding and recurrent stack initialise the encoder; the
            data must use its tokenizer (`data.tokenizer_model`) and direction (`data.backward`), both checked.
        word_vectors: a GloVe/word2vec/fastText text file to initialise the embeddings (width `emb_size`).
    """

    bundle_task = "classification"

    def __init__(
        self,
        vocab_size: int,
        num_classes: int | None = None,
        labels: list[str] | None = None,
        network: ClassifierNetwork = ClassifierNetwork(),
        fine_tuning: FineTuning = FineTuning(),
        optim: Optimization = Optimization("adamw", 2e-3, 0.01, lr_schedule="slanted_triangular"),
        pretrained_lm: str | None = None,
        word_vectors: str | None = None,
    ) -> None:
        super().__init__(optim)
        network.check()
        fine_tuning.check()
        if pretrained_lm is not None and word_vectors is not None:
            raise ConfigError("model.pretrained_lm and model.word_vectors both initialise the embeddings; keep one")
        if network.bidirectional and pretrained_lm is not None:
            raise ConfigError("a language model's encoder is unidirectional; set model.network.bidirectional to "
                              "false or leave it out when model.pretrained_lm is set")
        if vocab_size < 1 or (num_classes is not None and num_classes < 1):
            raise ConfigError("model: vocab_size and num_classes must be positive integers")
        self.network, self.fine_tuning = network, fine_tuning
        self.save_settings()
        self._pending_lm, self._lm_origin = None, None
        self.architecture = self._architecture()
        self.net: RNNClassifier | None = None
        self._vectors_loaded, self._unfrozen = False, None
        self.test_confusion: list[list[int]] | None = None
        if num_classes is not None:
            self._build(num_classes)

    # ------------------------------------------------------------------------------------------ building
    def _architecture(self) -> dict:
        """Sizes and cell type: from the LM bundle (checked against the ones given) or the defaults."""
        hp, scratch = self.hparams, ClassifierNetwork.SCRATCH
        given = {k: getattr(self.network, k) for k in scratch if getattr(self.network, k) is not None}
        if hp.pretrained_lm is None:
            return {**scratch, **given, "output_size": None}
        bundle = read_lm_bundle(hp.pretrained_lm, hp.vocab_size)
        net = bundle.config["net"]
        lm = {"emb_size": net["emb_size"], "hidden_size": net["hidden_size"], "num_layers": net["num_layers"],
              "rnn_type": net["rnn_type"], "bidirectional": False, "between_layers": net.get("between_layers", "none")}
        conflicts = {k: (v, lm[k]) for k, v in given.items() if v != lm[k]}
        if conflicts:
            detail = ", ".join(f"model.network.{k}={v} but the LM has {lm_v}" for k, (v, lm_v) in conflicts.items())
            raise ConfigError(f"{detail}; remove these options (they are taken from {hp.pretrained_lm})")
        self._pending_lm, self._lm_origin = bundle.weights, LMOrigin.of(bundle, hp.pretrained_lm)
        return {**lm, "output_size": net["emb_size"] if net.get("tie_weights", True) else net["hidden_size"]}

    def _build(self, num_classes: int) -> None:
        hp = self.hparams
        values = {**asdict(self.network), "vocab_size": hp.vocab_size, "num_classes": num_classes,
                  "head_sizes": self.network.head_sizes or (), **self.architecture}
        self.net = RNNClassifier(config_from(ClassifierConfig, values, strict=False))
        if self._pending_lm is not None:
            try:
                copied = self.net.load_encoder(self._pending_lm)
            except ValueError as error:
                raise ConfigError(f"{hp.pretrained_lm}: {error}") from None
            rank_zero_info(f"classifier: encoder initialised from {hp.pretrained_lm} ({copied} tensors)")
            self._pending_lm = None
        self._build_metrics(num_classes)

    def _build_metrics(self, num_classes: int) -> None:
        self.metrics = nn.ModuleDict({stage: MetricCollection({
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes, average="macro")}) for stage in ("val", "test")})
        self.losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.confusion = MulticlassConfusionMatrix(num_classes)

    def setup(self, stage: str) -> None:
        """Takes (or checks) the labels from the data module, builds the network, checks the tokenizer."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        self._take_labels(datamodule)
        if self.net is None:
            if self.hparams.num_classes is None:
                raise ConfigError("model.num_classes is not set and there is no data module to take the labels from")
            self._build(self.hparams.num_classes)
        check_lm_origin(self, self._lm_origin)
        tokenizer = getattr(datamodule, "tokenizer", None)
        if stage == "fit" and self.hparams.word_vectors and not self._vectors_loaded:
            if tokenizer is None:
                raise ConfigError("model.word_vectors needs a data module with a tokenizer")
            self._load_word_vectors(tokenizer.pieces())

    def _take_labels(self, datamodule: object) -> None:
        if getattr(datamodule, "labels", None) is None:
            return
        hp, labels = self.hparams, list(datamodule.labels)
        if hp.num_classes is not None and hp.num_classes != len(labels):
            raise ConfigError(f"model.num_classes={hp.num_classes} but the training data has {len(labels)} labels "
                              f"{labels}; fix model.init_args.num_classes or leave it out (it is taken from the data)")
        if hp.labels is not None and list(hp.labels) != labels:
            raise ConfigError(f"model.labels={list(hp.labels)} differ from the training data's labels {labels} "
                              "(sorted); fix model.init_args.labels or leave it out (it is taken from the data)")
        hp.num_classes, hp.labels = len(labels), labels

    def _load_word_vectors(self, pieces: list[str]) -> None:
        try:
            vectors, found = load_word_vectors(self.hparams.word_vectors, pieces, self.net.embedding.embedding_dim)
        except DataError as error:
            raise DataError(f"model.word_vectors: {error}") from None
        if not found.any():
            raise DataError(f"{self.hparams.word_vectors} has a vector for none of the {len(pieces)} tokenizer "
                            "pieces; check the file (and data.lowercase)")
        with torch.no_grad():
            self.net.embedding.weight[found] = vectors[found].to(self.net.embedding.weight)
        self._vectors_loaded = True
        rank_zero_info(f"classifier: word vectors for {int(found.sum())} of {len(pieces)} pieces")

    # ------------------------------------------------------------------------------------------ steps
    def _forward(self, batch: ClassificationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of the real (non-filler) texts: (n, num_classes), (n,)."""
        logits = self.net(batch.text, batch.lengths)  # (B, C)
        real = batch.real
        return logits[real].float(), batch.labels[real]

    def training_step(self, batch: ClassificationBatch, batch_idx: int) -> torch.Tensor:
        logits, labels = self._forward(batch)
        total = F.cross_entropy(logits, labels, label_smoothing=self.fine_tuning.label_smoothing, reduction="sum")
        if batch.soft is not None:  # distillation: the teacher's probabilities as targets, mixed with the gold
            weight = self.fine_tuning.soft_target_weight
            soft = F.cross_entropy(logits, batch.soft[batch.real].float(), reduction="sum")
            total = weight * soft + (1.0 - weight) * total
        count = max(labels.numel(), 1)
        self.log("train/loss", total.detach() / count, prog_bar=True, batch_size=count)
        self.log("train/acc", (logits.argmax(-1) == labels).float().mean(), batch_size=count)
        return self.global_mean(total, count)

    def _eval_step(self, batch: ClassificationBatch, stage: str) -> None:
        logits, labels = self._forward(batch)
        if labels.numel() == 0:  # a filler batch
            return
        self.losses[stage].update(F.cross_entropy(logits, labels), labels.numel())
        preds = logits.argmax(-1)
        self.metrics[stage].update(preds, labels)
        if stage == "test":
            self.confusion.update(preds, labels)

    def _log_eval(self, stage: str) -> None:
        """Metrics synced across processes by torchmetrics (the same on every rank: `sync_dist` changes nothing);
        the test adds the confusion counts."""
        values = self.metrics[stage].compute()
        self.log(f"{stage}/acc", values["acc"], prog_bar=True, sync_dist=True)
        self.log(f"{stage}/f1", values["f1"], sync_dist=True)
        self.log(f"{stage}/loss", self.losses[stage].compute(), sync_dist=True)
        self.metrics[stage].reset()
        self.losses[stage].reset()
        if stage != "test":
            return
        matrix = self.confusion.compute().long().cpu()  # (true, predicted)
        self.confusion.reset()
        self.test_confusion = matrix.tolist()
        labels = self.hparams.labels or [str(i) for i in range(matrix.size(0))]
        self.log("test/examples", float(matrix.sum()), sync_dist=True)
        for i, true in enumerate(labels):
            for j, predicted in enumerate(labels):
                self.log(f"test/confusion/{true}->{predicted}", float(matrix[i, j]), sync_dist=True)

    # ------------------------------------------------------------------------------------------ optimization
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """One parameter group per layer group, each with its discriminative learning-rate scale."""
        tuning, groups = self.fine_tuning, self.net.layer_groups()
        param_groups = []
        for k, params in enumerate(groups):
            depth = len(groups) - 1 - k  # the head is depth 0
            scale = tuning.discriminative_lr ** -depth * (tuning.embedding_lr_scale if k == 0 else 1.0)  # 0: embedding
            param_groups.append({"params": params, "lr": self.optim.lr * scale, "lr_scale": scale, "depth": depth})
        return self.make_optimizer(param_groups)

    def progress(self) -> float:
        """Share of training done (0 → 1): whichever ends first, the wall-clock budget or `max_epochs`/`max_steps`."""
        return max(training_progress(self.trainer), step_progress(self.trainer))

    def unfrozen_depth(self) -> int:
        """How many layer groups (from the head down) train now; all of them without gradual unfreezing."""
        groups = len(self.net.layer_groups())
        if not self.fine_tuning.gradual_unfreezing:
            return groups
        return min(groups, 1 + int(epochs_done(self.trainer) / self.fine_tuning.unfreeze_interval + 1e-9))

    def apply_lr(self, batch: ClassificationBatch) -> None:
        """Discriminative rates per layer group; the groups not yet unfrozen get 0."""
        lr, unfrozen = self.current_lr(), self.unfrozen_depth()
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = lr * group["lr_scale"] if group["depth"] < unfrozen else 0.0
        if unfrozen != self._unfrozen:
            self._set_trainable(unfrozen)

    def _set_trainable(self, unfrozen: int) -> None:
        """Frozen groups get lr 0; on one process their gradients are also skipped (under DDP every parameter keeps
        requires_grad, so that the gradient buckets stay valid)."""
        self._unfrozen = unfrozen
        if self.trainer.world_size == 1:
            groups = self.net.layer_groups()
            for k, params in enumerate(groups):
                frozen = len(groups) - 1 - k >= unfrozen or (k == 0 and self.fine_tuning.embedding_lr_scale == 0)
                for p in params:
                    p.requires_grad_(not frozen)
        if self.fine_tuning.gradual_unfreezing:
            rank_zero_info(f"classifier: training the top {unfrozen} layer group(s)")

    def on_train_end(self) -> None:
        for p in self.net.parameters():
            p.requires_grad_(True)

    def throughput_metrics(self, batch: ClassificationBatch, seconds: float) -> dict[str, float]:
        return {"train/tokens_per_sec": batch.num_tokens / seconds,
                "train/examples_per_sec": batch.text.size(0) / seconds}
