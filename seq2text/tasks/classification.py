"""ClassificationTask: (bi)LSTM/GRU text classifiers, from scratch or fine-tuned from an LM bundle (ULMFiT)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from seq2text.data.batches import ClassificationBatch
from seq2text.errors import ConfigError, DataError
from seq2text.nn.classifier import ClassifierConfig, Pooling, RNNClassifier
from seq2text.nn.config import config_from
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.rnn import RNNType
from seq2text.tasks.base import Task
from seq2text.tasks.schedule import epochs_done, schedule_shape, step_progress, training_progress
from seq2text.tasks.shared import LMOrigin, check_lm_origin, check_lm_vocab, global_mean
from seq2text.text.vectors import load_word_vectors

__all__ = ["ClassificationTask"]

_SCRATCH = {"emb_size": 300, "hidden_size": 256, "num_layers": 1, "rnn_type": "lstm", "bidirectional": True,
            "between_layers": "none"}


class ClassificationTask(Task):
    """Trains an `RNNClassifier`; reports accuracy, macro-F1 and (test) the confusion matrix.

    Network args are those of `RNNClassifier`; the architecture args left at None take the from-scratch
    defaults (emb 300, hidden 256, 1 layer, lstm, bidirectional), or, with `pretrained_lm`, the language
    model's (unidirectional). Other args:

    Args:
        vocab_size: tokenizer size (linked from `data.vocab_size` by the CLI).
        num_classes: number of labels; None takes it from the data module's training labels (the CLI
            case). When given, it must match the data.
        labels: the class names in index order; None takes the data module's (checked when given).
        pretrained_lm: a language-model bundle whose embedding and recurrent stack initialise the encoder;
            the data module must use its tokenizer (`data.tokenizer_model: <bundle>/tokenizer.model`) and read
            in its direction (`data.backward: true` for a backward LM); both are checked.
        word_vectors: a GloVe/word2vec/fastText text file to initialise the embeddings (width `emb_size`).
        optimizer: `adam` or `adamw`.
        lr: peak learning rate of the head.
        weight_decay: L2 (adam) or decoupled (adamw) weight decay.
        betas: Adam's betas (ULMFiT uses (0.8, 0.99)).
        lr_schedule: `slanted_triangular` (ULMFiT), `constant`, `cosine` or `linear` over the training
            (the wall-clock budget if one is set).
        warmup_steps: linear warm-up steps (on top of the schedule).
        min_lr_ratio: floor of the cosine/linear schedules, as a share of `lr`.
        stlr_cut_frac: share of training spent rising (slanted triangular).
        stlr_ratio: peak-to-floor ratio of the slanted triangular schedule.
        discriminative_lr: each layer group below the head learns at lr / discriminative_lr^depth
            (depth 1 = the last recurrent layer, ..., the embedding deepest); 2.6 in ULMFiT, 1 = off.
        gradual_unfreezing: train the head alone first, then unfreeze one more layer group (top down)
            every `unfreeze_interval` epochs.
        unfreeze_interval: epochs between unfreezing steps (fractions allowed, e.g. 0.25).
        embedding_lr_scale: the embedding learns at this share of its learning rate (on top of
            `discriminative_lr`); 0 freezes it, e.g. to keep `word_vectors` as they are, so that the words the
            labeled data lacks (`data.tokenizer_extra_text`) stay in the same space as those it trains.
        label_smoothing: cross-entropy label smoothing.
        soft_target_weight: with a teacher's probabilities in the data (`data.train_soft_targets`: knowledge
            distillation), the loss is this weight × the cross-entropy against them + the rest × the cross-entropy
            against the gold labels (1: the teacher's alone).
        between_layers: normalisation between recurrent layers (`none`, `layernorm` or `batchnorm`, see
            `RNNStack`); an architecture arg (None: `none`, or the language model's).
    """

    bundle_task = "classification"

    def __init__(
        self,
        vocab_size: int,
        num_classes: int | None = None,
        labels: list[str] | None = None,
        emb_size: int | None = None,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        rnn_type: RNNType | None = None,
        bidirectional: bool | None = None,
        pooling: Pooling = "concat",
        head_sizes: list[int] | None = None,
        dropout: float = 0.3,
        dropout_hidden: float = 0.2,
        dropout_input: float = 0.2,
        dropout_embedding: float = 0.05,
        weight_dropout: float = 0.0,
        dropout_head: float = 0.2,
        bptt: int | None = None,
        max_grad_len: int | None = None,
        pretrained_lm: str | None = None,
        word_vectors: str | None = None,
        optimizer: Literal["adam", "adamw"] = "adamw",
        lr: float = 2e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        lr_schedule: Literal["slanted_triangular", "constant", "cosine", "linear"] = "slanted_triangular",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        stlr_cut_frac: float = 0.1,
        stlr_ratio: float = 32.0,
        discriminative_lr: float = 1.0,
        gradual_unfreezing: bool = False,
        unfreeze_interval: float = 1.0,
        embedding_lr_scale: float = 1.0,
        label_smoothing: float = 0.0,
        between_layers: BetweenLayers | None = None,
        soft_target_weight: float = 1.0,
    ) -> None:
        super().__init__()
        _check_options(locals())
        self.save_hyperparameters()
        self._pending_lm = None
        self._lm_origin: LMOrigin | None = None
        self.architecture = self._architecture()
        self.net: RNNClassifier | None = None
        self._vectors_loaded = False
        self._unfrozen: int | None = None
        self.test_confusion: list[list[int]] | None = None
        if num_classes is not None:
            self._build(num_classes)

    # ------------------------------------------------------------------------------------------ building
    def _architecture(self) -> dict:
        """Sizes and cell type: from the LM bundle (checked against the ones given) or the defaults."""
        hp = self.hparams
        given = {k: hp[k] for k in _SCRATCH if hp[k] is not None}
        if hp.pretrained_lm is None:
            return {**_SCRATCH, **given, "output_size": None}
        from seq2text.bundles.io import read_bundle  # lazy: the bundle module sits above tasks

        bundle = read_bundle(hp.pretrained_lm, task="language_model")
        net = bundle.config["net"]
        lm = {"emb_size": net["emb_size"], "hidden_size": net["hidden_size"], "num_layers": net["num_layers"],
              "rnn_type": net["rnn_type"], "bidirectional": False, "between_layers": net.get("between_layers", "none")}
        conflicts = {k: (v, lm[k]) for k, v in given.items() if v != lm[k]}
        if conflicts:
            detail = ", ".join(f"model.{k}={v} but the LM has {lm_v}" for k, (v, lm_v) in conflicts.items())
            raise ConfigError(f"{detail}; remove these options (they are taken from {hp.pretrained_lm})")
        check_lm_vocab(net["vocab_size"], hp.vocab_size, hp.pretrained_lm)
        self._pending_lm, self._lm_origin = bundle.weights, LMOrigin.of(bundle, hp.pretrained_lm)
        return {**lm, "output_size": net["emb_size"] if net.get("tie_weights", True) else net["hidden_size"]}

    def _build(self, num_classes: int) -> None:
        hp = self.hparams
        values = {**hp, "num_classes": num_classes, "head_sizes": hp.head_sizes or (), **self.architecture}
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
        if getattr(datamodule, "labels", None) is not None:
            self._check_labels(list(datamodule.labels))

    def _check_labels(self, labels: list[str]) -> None:
        hp = self.hparams
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
        total = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing, reduction="sum")
        if batch.soft is not None:  # distillation: the teacher's probabilities as targets, mixed with the gold
            weight = self.hparams.soft_target_weight
            soft = F.cross_entropy(logits, batch.soft[batch.real].float(), reduction="sum")
            total = weight * soft + (1.0 - weight) * total
        count = max(labels.numel(), 1)
        self.log("train/loss", total.detach() / count, prog_bar=True, batch_size=count)
        self.log("train/acc", (logits.argmax(-1) == labels).float().mean(), batch_size=count)
        return global_mean(self, total, count)

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
        """Metrics synced across processes by torchmetrics; every text counted once. The values are the same
        on every rank, so `sync_dist` (a mean) leaves them unchanged."""
        values = self.metrics[stage].compute()
        self.log(f"{stage}/acc", values["acc"], prog_bar=True, sync_dist=True)
        self.log(f"{stage}/f1", values["f1"], sync_dist=True)
        self.log(f"{stage}/loss", self.losses[stage].compute(), sync_dist=True)
        self.metrics[stage].reset()
        self.losses[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")
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
        hp = self.hparams
        groups = self.net.layer_groups()
        param_groups = []
        for k, params in enumerate(groups):
            depth = len(groups) - 1 - k  # the head is depth 0
            scale = hp.discriminative_lr ** -depth * (hp.embedding_lr_scale if k == 0 else 1.0)  # 0: embedding
            param_groups.append({"params": params, "lr": hp.lr * scale, "lr_scale": scale, "depth": depth})
        return self.make_adam(param_groups, hp.optimizer == "adamw", lr=hp.lr, weight_decay=hp.weight_decay,
                              betas=tuple(hp.betas))

    def schedule_factor(self) -> float:
        """The schedule's shape now (the slanted triangular one with its cut fraction and ratio); current_lr() is
        the head's learning rate, each lower group's is scaled down from it (`discriminative_lr`)."""
        hp = self.hparams
        return schedule_shape(hp.lr_schedule, self.progress(), hp.min_lr_ratio, hp.stlr_cut_frac, hp.stlr_ratio)

    def progress(self) -> float:
        """Share of training done (0 → 1): whichever ends first, the wall-clock budget or `max_epochs`/`max_steps`."""
        return max(training_progress(self.trainer), step_progress(self.trainer))

    def unfrozen_depth(self) -> int:
        """How many layer groups (from the head down) train now; all of them without gradual unfreezing."""
        groups = len(self.net.layer_groups())
        if not self.hparams.gradual_unfreezing:
            return groups
        return min(groups, 1 + int(epochs_done(self.trainer) / self.hparams.unfreeze_interval + 1e-9))

    def apply_lr(self, batch: ClassificationBatch) -> None:
        """Discriminative rates per layer group; the groups not yet unfrozen get 0."""
        lr, unfrozen = self.current_lr(), self.unfrozen_depth()
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = lr * group["lr_scale"] if group["depth"] < unfrozen else 0.0
        if unfrozen != self._unfrozen:
            self._set_trainable(unfrozen)

    def _set_trainable(self, unfrozen: int) -> None:
        """Frozen groups get lr 0 (always exact); on one process their gradients are also skipped (speed).
        Under DDP every parameter keeps requires_grad, so that the gradient buckets stay valid."""
        self._unfrozen = unfrozen
        if self.trainer.world_size == 1:
            groups = self.net.layer_groups()
            for k, params in enumerate(groups):
                frozen = len(groups) - 1 - k >= unfrozen or (k == 0 and self.hparams.embedding_lr_scale == 0)
                for p in params:
                    p.requires_grad_(not frozen)
        if self.hparams.gradual_unfreezing:
            rank_zero_info(f"classifier: training the top {unfrozen} layer group(s)")

    def on_train_end(self) -> None:
        for p in self.net.parameters():
            p.requires_grad_(True)

    def throughput_metrics(self, batch: ClassificationBatch, seconds: float) -> dict[str, float]:
        return {"train/tokens_per_sec": batch.num_tokens / seconds,
                "train/examples_per_sec": batch.text.size(0) / seconds}


def _check_options(args: dict) -> None:
    for name in ("dropout", "dropout_hidden", "dropout_input", "dropout_embedding", "weight_dropout", "dropout_head",
                 "label_smoothing"):
        if not 0.0 <= args[name] < 1.0:
            raise ConfigError(f"model.{name}={args[name]} is out of range; it lies in [0, 1)")
    if not 0.0 <= args["soft_target_weight"] <= 1.0:
        raise ConfigError(f"model.soft_target_weight={args['soft_target_weight']} lies in [0, 1]")
    if args["lr"] <= 0 or args["weight_decay"] < 0 or args["discriminative_lr"] < 1.0:
        raise ConfigError("model: lr must be > 0, weight_decay ≥ 0 and discriminative_lr ≥ 1 (1 = off)")
    if not 0.0 <= args["embedding_lr_scale"] <= 1.0:
        raise ConfigError("model.embedding_lr_scale lies in [0, 1] (0 freezes the embedding, 1 = off)")
    if not 0.0 < args["stlr_cut_frac"] < 1.0 or args["stlr_ratio"] < 1.0 or args["unfreeze_interval"] <= 0:
        raise ConfigError("model: stlr_cut_frac lies in (0, 1), stlr_ratio ≥ 1 and unfreeze_interval > 0")
    if args["pretrained_lm"] is not None and args["word_vectors"] is not None:
        raise ConfigError("model.pretrained_lm and model.word_vectors both initialise the embeddings; keep one")
    if args["bidirectional"] and args["pretrained_lm"] is not None:
        raise ConfigError("a language model's encoder is unidirectional; set model.bidirectional to false or leave "
                          "it out when model.pretrained_lm is set")
    sizes = [args[k] for k in ("emb_size", "hidden_size", "num_layers", "num_classes", "bptt", "max_grad_len")]
    if any(v is not None and v < 1 for v in sizes) or min(args["vocab_size"], *(args["head_sizes"] or [1])) < 1:
        raise ConfigError("model: sizes, num_classes, bptt and max_grad_len must be positive integers")
