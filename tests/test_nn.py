import pytest
import torch

from seq2text.hardware import cpu_bf16
from seq2text.nn import AdaptiveSoftmax, DropConnectRNN, LMConfig, LockedDropout, RNNLanguageModel, embedding_dropout
from seq2text.nn.regularization import drop_connect, keep_mask


def test_embedding_dropout_drops_whole_words() -> None:
    torch.manual_seed(0)
    weight = torch.randn(50, 8)
    ids = torch.arange(50).repeat(3, 1)  # every word three times
    out = embedding_dropout(weight, ids, 0.5, training=True)
    zero = out.abs().sum(-1) == 0  # (3, 50)
    assert zero.any() and (zero == zero[0]).all()  # a dropped word is dropped everywhere
    assert torch.equal(embedding_dropout(weight, ids, 0.5, training=False), weight[ids])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_mask_keeps_one_minus_p_scaled(p: float, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    mask = keep_mask((400, 500), p, torch.empty(0, dtype=dtype))
    assert mask.dtype == dtype and mask.shape == (400, 500)
    values = set(mask.float().unique().tolist())
    assert values == {0.0, float(torch.tensor(1 / (1 - p), dtype=dtype))}
    kept = (mask != 0).float().mean().item()  # 200,000 draws: the standard error is ≤ 0.0012
    assert abs(kept - (1 - p)) < 0.006
    assert abs(mask.float().mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_drop_connect_passes_gradient_to_kept_entries_only() -> None:
    torch.manual_seed(0)
    weight = torch.randn(30, 20, requires_grad=True)
    dropped = drop_connect(weight, 0.5)
    dropped.sum().backward()
    kept = dropped.detach() != 0
    assert torch.allclose(dropped.detach()[kept], weight.detach()[kept] * 2)
    assert torch.equal(weight.grad, kept.float() * 2)


def test_locked_dropout_shares_mask_over_time() -> None:
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(4, 7, 16))
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert torch.equal(drop.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "rnn"])
def test_dropconnect_uses_dropped_weights_and_leaves_module_intact(rnn_type: str) -> None:
    torch.manual_seed(0)
    layer = DropConnectRNN(rnn_type, 6, 5, weight_dropout=0.5)
    x = torch.randn(2, 4, 6)
    plain = layer.rnn(x)[0]
    layer.train()
    dropped = layer(x, None)[0]
    assert not torch.allclose(dropped, plain)
    dropped.sum().backward()
    assert layer.rnn.weight_hh_l0.grad is not None and layer.rnn.weight_hh_l0.grad.abs().sum() > 0
    assert isinstance(layer.rnn.weight_hh_l0, torch.nn.Parameter)  # nothing monkey-patched
    layer.eval()
    assert torch.allclose(layer(x, None)[0], plain)


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_dropconnect_under_bf16_autocast(rnn_type: str) -> None:
    native, reason = cpu_bf16()
    if not native:
        pytest.skip(f"needs a CPU with native bf16: {reason}")
    torch.manual_seed(0)
    layer = DropConnectRNN(rnn_type, 6, 5, weight_dropout=0.5).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # DropConnect under mixed precision
        out = layer(torch.randn(2, 4, 6), None)[0]
    out.float().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(layer.rnn.weight_hh_l0.grad).all()


@pytest.mark.parametrize("cutoffs", [[], [10], [10, 30]])
def test_adaptive_softmax_is_a_normalized_distribution(cutoffs: list[int]) -> None:
    torch.manual_seed(0)
    head = AdaptiveSoftmax(50, 8, cutoffs)
    weight = torch.randn(50, 8)
    hidden = torch.randn(20, 8)
    logp = head.log_prob(hidden, weight)  # (20, 50)
    assert torch.allclose(logp.logsumexp(-1), torch.zeros(20), atol=1e-5)
    target = torch.randint(0, 50, (20,))
    assert torch.allclose(head.nll(hidden, target, weight), -logp.gather(1, target[:, None]).squeeze(1), atol=1e-5)


def test_adaptive_softmax_rejects_bad_cutoffs() -> None:
    with pytest.raises(ValueError):
        AdaptiveSoftmax(50, 8, [30, 10])


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tie", [True, False])
def test_language_model_shapes_and_state(rnn_type: str, tie: bool) -> None:
    torch.manual_seed(0)
    lm = RNNLanguageModel(LMConfig(40, emb_size=8, hidden_size=12, num_layers=3, rnn_type=rnn_type, tie_weights=tie,
                                   adaptive_cutoffs=(20,))).eval()
    x = torch.randint(0, 40, (3, 9))
    features, hidden, raw = lm(x)
    assert features.shape == raw.shape == (3, 9, 8 if tie else 12) and len(hidden) == 3
    assert lm.log_probs(features).shape == (3, 9, 40)
    # carrying the state over two windows equals one pass over the whole sequence
    first, state, _ = lm(x[:, :4])
    second, _, _ = lm(x[:, 4:], lm.detach(state))
    assert torch.allclose(torch.cat([first, second], 1), features, atol=1e-5)
    assert (lm.output_weight is lm.embedding.weight) == tie
