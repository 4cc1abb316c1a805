"""The LSTM variants (`lstm_peephole`, `lstm_layernorm`) and the normalisation between stacked layers: gradients,
agreement with `nn.LSTM` and with the paper's equations, packed batches, DropConnect, masked BatchNorm, and one
tiny fit per task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import seq2text
from seq2text.bundles.compression import compress_bundle, quantized_engines
from seq2text.nn.cells import LayerNormLSTM, LayerNormLSTMCell, PeepholeLSTM, PeepholeLSTMCell
from seq2text.nn.normalization import MaskedBatchNorm
from seq2text.nn.rnn import DropConnectRNN, RNNStack
from seq2text.nn.search import SearchConfig, greedy_search
from seq2text.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from tests.conftest import TINY_CLS, TINY_LM, fit, one_thread, write_sst

VARIANTS = ["lstm_peephole", "lstm_layernorm"]
LAYERS = {"lstm_peephole": PeepholeLSTM, "lstm_layernorm": LayerNormLSTM}
CELLS = {"lstm_peephole": PeepholeLSTMCell, "lstm_layernorm": LayerNormLSTMCell}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is fastest, and steady on a busy machine."""
    with one_thread():
        yield


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter random (LN gains and biases too), so that no term of the equations hides behind 0 or 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.rand(param.shape, generator=generator) - 0.5)
    return module


# ------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("packed", [False, True])
def test_gradcheck_sequence_layers(kind: str, packed: bool) -> None:
    torch.manual_seed(0)
    layer = _randomise(LAYERS[kind](3, 2, num_layers=2, bidirectional=True), 1).double()  # every parameter kind
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    h0, c0 = (torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    lengths = torch.tensor([3, 2])

    def run(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = pack_padded_sequence(x, lengths, batch_first=True) if packed else x
        out, (h, c) = functional_call(layer, dict(zip(names, params, strict=True)), (inputs, (h0, c0)))
        out = pad_packed_sequence(out, batch_first=True)[0] if packed else out
        return out, h, c

    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(run, (x, h0, c0, *params), fast_mode=True)  # random projections: seconds


@pytest.mark.parametrize("cell_class", [PeepholeLSTMCell, LayerNormLSTMCell])
def test_gradcheck_step_cells(cell_class: type[nn.Module]) -> None:
    torch.manual_seed(0)
    cell = _randomise(cell_class(3, 2), 2).double()
    names = [name for name, _ in cell.named_parameters()]
    x, h, c = (torch.randn(2, size, dtype=torch.float64, requires_grad=True) for size in (3, 2, 2))

    def run(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return functional_call(cell, dict(zip(names, params, strict=True)), (x, (h, c)))

    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (x, h, c, *params))


# ------------------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_zero_peepholes_give_nn_lstm(bidirectional: bool, packed: bool) -> None:
    torch.manual_seed(0)
    reference = nn.LSTM(5, 4, num_layers=2, batch_first=True, bidirectional=bidirectional)
    layer = PeepholeLSTM(5, 4, num_layers=2, bidirectional=bidirectional)
    state = {k: torch.zeros_like(v) if k.startswith("weight_c") else reference.state_dict()[k]
             for k, v in layer.state_dict().items()}
    layer.load_state_dict(state)
    x, lengths = torch.randn(3, 6, 5), torch.tensor([4, 6, 2])
    hx = tuple(torch.randn(2 * (2 if bidirectional else 1), 3, 4) for _ in range(2))
    inputs = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if packed else x
    expected, (h_ref, c_ref) = reference(inputs, hx)
    out, (h, c) = layer(inputs, hx)
    if packed:
        assert torch.equal(out.batch_sizes, expected.batch_sizes)
        assert torch.equal(out.unsorted_indices, expected.unsorted_indices)
        out, expected = out.data, expected.data
    for mine, theirs in ((out, expected), (h, h_ref), (c, c_ref)):
        assert mine.shape == theirs.shape and torch.allclose(mine, theirs, atol=1e-6)


def _layernorm_reference(layer: LayerNormLSTM, x: torch.Tensor, suffix: str) -> tuple[torch.Tensor, ...]:
    """Ba et al. (2016), step by step: x (B, T, F) → outputs (B, T, H), h_T, c_T from zero states."""
    p = {name.removesuffix(suffix): value for name, value in layer.named_parameters() if name.endswith(suffix)}
    size = layer.hidden_size
    h = c = x.new_zeros(x.size(0), size)
    outputs = []
    for t in range(x.size(1)):
        gates = (F.layer_norm(x[:, t] @ p["weight_ih"].T, (4 * size,), p["ln_ih_weight"], p["ln_ih_bias"])
                 + F.layer_norm(h @ p["weight_hh"].T, (4 * size,), p["ln_hh_weight"], p["ln_hh_bias"])
                 + p["bias_ih"] + p["bias_hh"])
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (size,), p["ln_c_weight"], p["ln_c_bias"]))
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c


def test_layernorm_lstm_follows_the_paper() -> None:
    torch.manual_seed(0)
    layer = _randomise(LayerNormLSTM(5, 4, bidirectional=True), 3)
    x = torch.randn(3, 6, 5)
    out, (h, c) = layer(x)
    forward = _layernorm_reference(layer, x, "_l0")
    backward = _layernorm_reference(layer, x.flip(1), "_l0_reverse")
    assert torch.allclose(out[..., :4], forward[0], atol=1e-6)
    assert torch.allclose(out[..., 4:], backward[0].flip(1), atol=1e-6)
    assert torch.allclose(h, torch.stack([forward[1], backward[1]]), atol=1e-6)
    assert torch.allclose(c, torch.stack([forward[2], backward[2]]), atol=1e-6)


@pytest.mark.parametrize("kind", VARIANTS)
def test_a_packed_batch_gives_each_sequence_its_own_end_state(kind: str) -> None:
    torch.manual_seed(0)
    layer = _randomise(LAYERS[kind](5, 4, num_layers=2, bidirectional=True), 4)
    x, lengths = torch.randn(3, 7, 5), torch.tensor([7, 2, 5])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h, c) = layer(packed)
    out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, 8)
    for b, length in enumerate(lengths.tolist()):
        alone, (h_b, c_b) = layer(x[b: b + 1, :length])
        assert torch.allclose(out[b, :length], alone[0], atol=1e-6)
        assert torch.all(out[b, length:] == 0)
        assert torch.allclose(h[:, b], h_b[:, 0], atol=1e-6) and torch.allclose(c[:, b], c_b[:, 0], atol=1e-6)


@pytest.mark.parametrize("kind", VARIANTS)
def test_step_cell_equals_one_step_of_the_sequence_layer(kind: str) -> None:
    torch.manual_seed(0)
    layer = _randomise(LAYERS[kind](5, 4), 5)
    cell = CELLS[kind](5, 4)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x, h0, c0 = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    _, (h, c) = layer(x.unsqueeze(1), (h0.unsqueeze(0), c0.unsqueeze(0)))
    h_cell, c_cell = cell(x, (h0, c0))
    assert torch.allclose(h_cell, h[0], atol=1e-6) and torch.allclose(c_cell, c[0], atol=1e-6)


@pytest.mark.parametrize("kind", VARIANTS)
def test_dropconnect_drops_the_recurrent_weights_of_the_variants(kind: str) -> None:
    torch.manual_seed(0)
    layer = DropConnectRNN(kind, 6, 5, weight_dropout=0.5, bidirectional=True)
    x = torch.randn(2, 4, 6)
    plain = layer.eval()(x, None)[0]
    dropped = layer.train()(x, None)[0]
    assert not torch.allclose(dropped, plain)
    dropped.sum().backward()
    for name in ("weight_hh_l0", "weight_hh_l0_reverse"):
        param = getattr(layer.rnn, name)
        assert isinstance(param, nn.Parameter) and param.grad.abs().sum() > 0
    assert torch.allclose(layer.eval()(x, None)[0], plain)


# ------------------------------------------------------------------------------------------ between layers
def test_masked_batchnorm_ignores_padding() -> None:
    torch.manual_seed(0)
    x, lengths = torch.randn(3, 5, 4) * 3 + 1, torch.tensor([5, 2, 3])
    mask = torch.arange(5) < lengths.unsqueeze(1)  # (B, T)
    norm, reference = MaskedBatchNorm(4).train(), nn.BatchNorm1d(4).train()
    out = norm(x, mask)
    expected = reference(x[mask])  # (real positions, F)
    assert torch.allclose(out[mask], expected, atol=1e-5) and torch.all(out[~mask] == 0)
    assert torch.allclose(norm.running_mean, reference.running_mean, atol=1e-6)
    assert torch.allclose(norm.running_var, reference.running_var, atol=1e-6)
    other = x.masked_fill(~mask.unsqueeze(-1), 1e3)  # other padding values: nothing changes
    again = MaskedBatchNorm(4).train()
    assert torch.allclose(again(other, mask), out) and torch.allclose(again.running_var, norm.running_var)
    norm.eval()
    assert torch.allclose(norm(x, mask)[mask], reference.eval()(x[mask]), atol=1e-5)  # running statistics


@pytest.mark.parametrize("between", ["layernorm", "batchnorm"])
def test_stack_normalises_between_layers_and_ignores_padding(between: str) -> None:
    torch.manual_seed(0)
    stack = RNNStack("lstm_layernorm", 5, 6, 4, 3, bidirectional=True, between_layers=between).train()
    assert len(stack.norms) == 2 and stack.norms[0].weight.shape == (12,)
    x, lengths = torch.randn(3, 6, 5), torch.tensor([6, 4, 2])
    padded = x.masked_fill(~(torch.arange(6) < lengths.unsqueeze(1)).unsqueeze(-1), 7.0)
    out, _ = stack(x, None, lengths)
    assert torch.allclose(stack(padded, None, lengths)[0], out, atol=1e-6)
    plain = RNNStack("lstm_layernorm", 5, 6, 4, 3, bidirectional=True)
    assert plain.norms is None and not any("norms" in k for k in plain.state_dict())  # `none`: as before
    with pytest.raises(ValueError, match="use none, layernorm or batchnorm"):
        RNNStack("lstm", 5, 6, 4, 2, between_layers="groupnorm")


# ------------------------------------------------------------------------------------------ translation
@pytest.mark.parametrize("kind", VARIANTS)
def test_seq2seq_runs_with_the_variants(kind: str) -> None:
    torch.manual_seed(0)
    config = Seq2SeqConfig(40, 8, 12, num_encoder_layers=2, num_decoder_layers=2, rnn_type=kind, dropout=0.1)
    net = Seq2Seq(config)
    assert isinstance(net.encoder.rnn, LAYERS[kind]) and net.cell_bridge is not None
    assert isinstance(net.decoder.upper[0], CELLS[kind])
    src, lengths, trg = torch.randint(4, 40, (3, 7)), torch.tensor([7, 3, 5]), torch.randint(4, 40, (3, 6))
    features = net(src, lengths, trg)  # (B, T, att_size)
    assert features.shape == (3, 6, 8) and torch.isfinite(features).all()
    net.logits(features).logsumexp(-1).sum().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == [], missing
    hypotheses = greedy_search(net.eval(), src, lengths, SearchConfig(max_len_ratio=1.5, max_len_offset=2))
    assert len(hypotheses) == 3
    with pytest.raises(ValueError, match="use lstm, gru, lstm_peephole or lstm_layernorm"):
        Seq2SeqConfig(40, rnn_type="rnn")


# ------------------------------------------------------------------------------------------ tasks
@pytest.mark.parametrize(("kind", "between"), [("lstm_peephole", "batchnorm"), ("lstm_layernorm", "layernorm")])
def test_language_model_fits_with_the_variants(kind: str, between: str, toy_lm_dir: Path, tmp_path: Path) -> None:
    bundle = fit("ptb_lstm_small.yaml", tmp_path, "--data.init_args.root", str(toy_lm_dir), *TINY_LM,
                 "--trainer.max_epochs", "1", "--model.init_args.rnn_type", kind,
                 "--model.init_args.between_layers", between)
    config = json.loads((bundle / "config.json").read_text())
    assert config["net"]["rnn_type"] == kind and config["net"]["between_layers"] == between
    lm = seq2text.load(bundle)
    assert isinstance(lm.net.rnn.layers[0].rnn, LAYERS[kind])
    lines = (toy_lm_dir / "ptb.test.txt").read_text().splitlines()
    perplexity = lm.perplexity(lines)
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert perplexity == pytest.approx(metrics["test/ppl"], rel=1e-4) and perplexity < lm.tokenizer.vocab_size
    if not quantized_engines():
        return
    small = seq2text.load(compress_bundle(bundle, tmp_path / "int8", "int8"))  # the variant stays float32
    assert isinstance(small.net.rnn.layers[0].rnn, LAYERS[kind])
    assert small.perplexity(lines) == pytest.approx(perplexity, rel=0.05)


@pytest.mark.parametrize("kind", VARIANTS)
def test_classifier_fits_with_the_variants(kind: str, tmp_path: Path) -> None:
    write_sst(tmp_path / "data", (120, 20, 20))
    bundle = fit("sst2_bilstm.yaml", tmp_path / "out", "--data.init_args.root", str(tmp_path / "data"), *TINY_CLS,
                 "--trainer.max_epochs", "1", "--model.init_args.network.rnn_type", kind,
                 "--model.init_args.network.num_layers", "2", "--model.init_args.network.between_layers", "batchnorm")
    classifier = seq2text.load(bundle)
    assert isinstance(classifier.net.rnn.layers[1].rnn, LAYERS[kind])
    assert isinstance(classifier.net.rnn.norms[0], MaskedBatchNorm)
    proba = classifier.predict_proba(["a good film", "awful", ""])
    assert all(sum(p.values()) == pytest.approx(1.0) for p in proba)


def _synced_batchnorm_worker(rank: int, port: int, values: torch.Tensor, mask: torch.Tensor, out: dict) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    norm = MaskedBatchNorm(values.size(-1)).train()
    part = values[rank::2].clone().requires_grad_(True)
    result = norm(part, mask[rank::2])
    (result * torch.arange(1.0, result.numel() + 1).view_as(result)).sum().backward()
    out[rank] = (result.detach(), part.grad, norm.running_mean.clone(), norm.running_var.clone())
    dist.destroy_process_group()


def test_masked_batchnorm_syncs_its_statistics_across_ddp_processes() -> None:
    """2 gloo processes with half a batch each normalise, update and back-propagate as one process with all."""
    import socket

    import torch.multiprocessing as mp

    torch.manual_seed(1)
    values, mask = torch.randn(6, 5, 3), torch.rand(6, 5) > 0.3
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_synced_batchnorm_worker, args=(port, values, mask, out), nprocs=2, join=True)
    whole = values.clone().requires_grad_(True)
    norm = MaskedBatchNorm(3).train()
    result = norm(whole, mask)
    weights = torch.arange(1.0, result[0::2].numel() + 1).view_as(result[0::2])
    ((result[0::2] * weights).sum() + (result[1::2] * weights).sum()).backward()
    for rank in range(2):
        got, grad, mean, var = out[rank]
        torch.testing.assert_close(got, result.detach()[rank::2], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad, whole.grad[rank::2], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mean, norm.running_mean)
        torch.testing.assert_close(var, norm.running_var)
