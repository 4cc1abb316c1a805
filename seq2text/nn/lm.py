"""The recurrent language model (AWD-LSTM family): embedding → RNN stack → (adaptive) softmax."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seq2text.nn.config import Config
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.rnn import EmbeddedRNN, Hidden, RNNType
from seq2text.nn.softmax import AdaptiveSoftmax

__all__ = ["LMConfig", "RNNLanguageModel"]


@dataclass(frozen=True)
class LMConfig(Config):
    """The language model's architecture and regularizers.

    Args:
        vocab_size: number of token ids.
        emb_size: embedding width (also the last layer's width when weights are tied).
        hidden_size: width of the inner recurrent layers.
        num_layers: recurrent depth.
        rnn_type: `lstm`, `gru`, `rnn`, `lstm_peephole` or `lstm_layernorm`.
        dropout: locked dropout on the last layer's output.
        dropout_hidden: locked dropout between recurrent layers.
        dropout_input: locked dropout on the embeddings.
        dropout_embedding: drop whole words from the embedding matrix.
        weight_dropout: DropConnect on hidden-to-hidden weights.
        tie_weights: share the embedding matrix with the output projection.
        adaptive_cutoffs: adaptive-softmax cluster boundaries (ids); empty for a full softmax.
        between_layers: normalisation between recurrent layers: `none`, `layernorm` or `batchnorm`.
    """

    vocab_size: int
    emb_size: int = 400
    hidden_size: int = 1150
    num_layers: int = 3
    rnn_type: RNNType = "lstm"
    dropout: float = 0.4
    dropout_hidden: float = 0.3
    dropout_input: float = 0.65
    dropout_embedding: float = 0.1
    weight_dropout: float = 0.5
    tie_weights: bool = True
    adaptive_cutoffs: tuple[int, ...] = ()
    between_layers: BetweenLayers = "none"

    @property
    def out_size(self) -> int:
        """Width of the last recurrent layer: the embedding width when tied."""
        return self.emb_size if self.tie_weights else self.hidden_size


class RNNLanguageModel(EmbeddedRNN):
    """LSTM/GRU/Elman language model with the regularizers of Merity et al. (2018), built from an `LMConfig`."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__(config, config.out_size)
        vocab_size, out_size = config.vocab_size, config.out_size
        self.out_weight = (None if config.tie_weights
                           else nn.Parameter(torch.empty(vocab_size, out_size).uniform_(-0.1, 0.1)))
        self.softmax = AdaptiveSoftmax(vocab_size, out_size, config.adaptive_cutoffs)

    @property
    def output_weight(self) -> torch.Tensor:
        """(vocab_size, out_size): the embedding when tied."""
        return self.embedding.weight if self.out_weight is None else self.out_weight

    def forward(self, input: torch.Tensor, hidden: list[Hidden] | None = None
                ) -> tuple[torch.Tensor, list[Hidden], torch.Tensor]:
        """input (batch, seq_len) ids → features (batch, seq_len, out_size), the new state, the raw output (`read`)."""
        return self.read(input, hidden)

    def nll(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """features (..., out_size), target (...) → NLL per target (...), float32 nats."""
        flat = self.softmax.nll(features.reshape(-1, features.size(-1)), target.reshape(-1), self.output_weight)
        return flat.view(target.shape)

    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., out_size) → log-probabilities (..., vocab_size), float32."""
        flat = self.softmax.log_prob(features.reshape(-1, features.size(-1)), self.output_weight)
        return flat.view(*features.shape[:-1], -1)
