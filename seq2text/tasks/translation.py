"""TranslationTask: attentional LSTM/GRU encoder–decoder, label-smoothed cross-entropy, and sacreBLEU's BLEU, chrF
and TER of the decoded lines against the raw reference lines (the data module's `references`), each counted once."""

from __future__ import annotations

import math
from dataclasses import asdict, replace

import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from seq2text.data.batches import TranslationBatch
from seq2text.errors import ConfigError
from seq2text.nn.loss import label_smoothed_nll
from seq2text.nn.search import SearchConfig
from seq2text.nn.search import search as search_hypotheses
from seq2text.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from seq2text.predict.metrics import bleu, translation_scores
from seq2text.tasks.base import Task
from seq2text.tasks.config import Optimization, Seq2SeqNetwork, check_ranges

__all__ = ["TranslationTask"]


class TranslationTask(Task):
    """Trains a `Seq2Seq` network.

    Args:
        vocab_size: size of the joint tokenizer (linked from `data.vocab_size` by the CLI).
        network: the architecture (`seq2text.tasks.config.Seq2SeqNetwork`).
        label_smoothing: share of the target probability spread uniformly over the vocabulary.
        optim: see `Optimization`.
        val_bleu: decode the validation set after every validation epoch and log `val/bleu`.
        val_beam_size: beam size of that decoding (1 = greedy, the cheap default).
        search: the test decoding (`SearchConfig`: beam size, length penalty, length limit), also the bundle's
            default.
    """

    bundle_task = "translation"

    def __init__(
        self,
        vocab_size: int,
        network: Seq2SeqNetwork = Seq2SeqNetwork(),
        label_smoothing: float = 0.1,
        optim: Optimization = Optimization("adam", 1e-3),
        val_bleu: bool = True,
        val_beam_size: int = 1,
        search: SearchConfig = SearchConfig(),
    ) -> None:
        super().__init__(optim)
        network.check()
        check_ranges("search", search)
        if not 0 <= label_smoothing < 1 or min(vocab_size, val_beam_size) < 1:
            raise ConfigError("model.label_smoothing lies in [0, 1); vocab_size and val_beam_size are positive")
        if search.max_len_ratio <= 0 or search.max_len_offset < 0:
            raise ConfigError("model.search: max_len_ratio must be > 0 and max_len_offset ≥ 0")
        self.search = search
        self.save_settings()
        self.net = Seq2Seq(Seq2SeqConfig(vocab_size, **asdict(network)))
        self._outputs: dict[str, list[tuple[int, str]]] = {}  # stage → (line, hypothesis) pairs
        self.hypotheses: dict[str, list[str]] = {}
        self.details: dict[str, str] = {}  # sacreBLEU signatures and summaries

    # ------------------------------------------------------------------------------------------ loss
    def _losses(self, batch: TranslationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed label-smoothed loss and summed NLL (nats) over the target tokens of `batch`."""
        features = self.net(batch.src, batch.src_lengths, batch.trg_in)  # (B, T, att_size)
        logits = self.net.logits(features[batch.trg_mask])  # (N, V): real positions only, one matmul
        loss, nll = label_smoothed_nll(logits, batch.trg_out[batch.trg_mask], self.hparams.label_smoothing)
        return loss.sum(), nll.sum()

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> torch.Tensor:
        loss_sum, nll_sum = self._losses(batch)
        tokens = max(batch.num_tokens, 1)
        self.log("train/loss", loss_sum.detach() / tokens, prog_bar=True, batch_size=tokens)
        self.log("train/ppl", torch.exp(nll_sum.detach() / tokens), batch_size=tokens)
        return self.global_mean(loss_sum, tokens)

    def _eval_step(self, batch: TranslationBatch, stage: str) -> None:
        loss_sum, nll_sum = self._losses(batch)
        self.add_sums(stage, loss_sum, nll_sum, batch.trg_mask.sum())
        beam = self.search.beam_size if stage == "test" else self.hparams.val_beam_size
        decode = stage == "test" or (self.hparams.val_bleu and not self.trainer.sanity_checking)
        tokenizer = getattr(getattr(self.trainer, "datamodule", None), "tokenizer", None) if decode else None
        if decode and tokenizer is None:
            rank_zero_warn("no data module with a tokenizer: BLEU is not computed")
        elif decode:
            texts = tokenizer.decode(self.decode(batch.src, batch.src_lengths, beam))
            self._outputs.setdefault(stage, []).extend(zip(batch.indices.tolist(), texts, strict=True))

    def decode(self, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int) -> list[list[int]]:
        """Best hypothesis ids of each source (greedy when `beam_size` is 1)."""
        config = replace(self.search, beam_size=beam_size)
        return [hyps[0].tokens for hyps in search_hypotheses(self.net, src, src_lengths, config)]

    # ------------------------------------------------------------------------------------------ metrics
    def _gathered_hypotheses(self, stage: str) -> list[str] | None:
        """Every process's (line, hypothesis) pairs, in line order; None when nothing was decoded."""
        pairs = self._outputs.pop(stage, [])
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            gathered: list[list[tuple[int, str]]] = [[] for _ in range(dist.get_world_size())]
            dist.all_gather_object(gathered, pairs)
            pairs = [pair for part in gathered for pair in part]
        return [text for _, text in sorted(pairs)] if pairs else None

    def _log_eval(self, stage: str) -> None:
        """Token-level loss and perplexity; BLEU (validation) or BLEU, chrF and TER (test) of the decoded lines.
        Every value is already computed over all ranks: sync_dist=True only tells Lightning so."""
        sums = self.gathered_sums(stage, 3)  # loss, NLL, tokens
        tokens, nll = max(float(sums[2]), 1.0), float(sums[1])
        self.log(f"{stage}/ppl", math.exp(min(nll / tokens, 700.0)), prog_bar=stage == "val", sync_dist=True)
        self.log_dict({f"{stage}/loss": float(sums[0]) / tokens, f"{stage}/nll": nll / tokens,
                       f"{stage}/tokens": tokens}, sync_dist=True)
        hypotheses, split = self._gathered_hypotheses(stage), "valid" if stage == "val" else stage
        references = getattr(self.trainer.datamodule, "references", {}).get(split) if hypotheses else None
        if hypotheses is not None and (references is None or len(references) != len(hypotheses)):
            rank_zero_warn(f"{len(hypotheses)} hypotheses but {len(references or [])} {split} references: BLEU is "
                           "not computed")
        elif hypotheses is not None and stage == "val":
            score = bleu(hypotheses, references)
            self.hypotheses["val"], self.details["val/bleu_signature"] = hypotheses, score.signature
            self.log("val/bleu", score.score, prog_bar=True, sync_dist=True)
        elif hypotheses is not None:
            self.hypotheses["test"] = hypotheses
            for name, score in translation_scores(hypotheses, references).items():
                self.log(f"test/{name}", score.score, sync_dist=True)
                self.details[f"test/{name}_signature"] = score.signature
                self.details[f"test/{name}_summary"] = score.text
                rank_zero_info(f"test ({len(hypotheses)} sentences, beam {self.search.beam_size}): "
                               f"{score.text} | {score.signature}")

    def bundle_metrics(self) -> dict[str, str]:
        """Non-numeric results stored next to the numbers in the bundle: sacreBLEU signatures and summaries."""
        return dict(self.details)

    def search_config(self) -> dict:
        """The test decoding, stored in the bundle (the `Translator` starts from it)."""
        return asdict(self.search)

    def throughput_metrics(self, batch: TranslationBatch, seconds: float) -> dict[str, float]:
        target = batch.num_tokens
        return {"train/tokens_per_sec": (target + int(batch.src_lengths.sum())) / seconds,
                "train/trg_tokens_per_sec": target / seconds}
