"""`seq2text compress`: int8 bundles (int8 storage, dynamic int8 kernels at load) and fp16/bf16 storage, for
every task's predictor; what the bundle records, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import seq2text
from seq2text.bundles.compression import MIN_INT8_SIZE, compress_bundle, quantize_rows
from seq2text.bundles.io import SCALE_SUFFIX, bundle_size
from seq2text.cli import main
from seq2text.errors import BundleError, ConfigError

SOURCES = ["der hund läuft im park", "", "eine katze schläft im haus"]
TEXTS = ["the cat sat on the mat", "a dog ran to the red house"]


def _dynamic_int8_layers(net: torch.nn.Module) -> list[str]:
    return [type(m).__name__ for m in net.modules() if "quantized.dynamic" in type(m).__module__]


def test_quantize_rows_is_within_half_a_step_per_row() -> None:
    weight = torch.randn(7, 300) * torch.linspace(0.01, 3, 7)[:, None]
    q, scale = quantize_rows(weight)
    assert q.dtype == torch.int8 and scale.shape == (7,)
    assert ((q.float() * scale[:, None] - weight).abs() <= scale[:, None] / 2 + 1e-7).all()


@pytest.mark.parametrize("kind", ["int8", "fp16", "bf16"])
def test_a_compressed_translator_is_smaller_and_translates(translator_bundle: Path, tmp_path: Path, kind: str) -> None:
    assert main(["compress", "--model", str(translator_bundle), "--output", str(tmp_path / kind), f"--{kind}"]) == 0
    config = json.loads((tmp_path / kind / "config.json").read_text())
    assert config["compression"]["kind"] == kind
    assert config["compression"]["source_bytes"] == bundle_size(translator_bundle)
    weights_bytes = (tmp_path / kind / "model.safetensors").stat().st_size
    assert weights_bytes < (0.6 if kind == "int8" else 0.7) * (translator_bundle / "model.safetensors").stat().st_size
    original = load_file(translator_bundle / "model.safetensors")
    stored = load_file(tmp_path / kind / "model.safetensors")
    translator = seq2text.load(tmp_path / kind)
    if kind == "int8":
        big = [k for k, v in original.items() if v.dim() == 2 and v.numel() >= MIN_INT8_SIZE]
        assert big and all(stored[k].dtype == torch.int8 and k + SCALE_SUFFIX in stored for k in big)
        assert "Linear" in _dynamic_int8_layers(translator.net)  # the decoder's layers and the output projection
        assert translator.net.output_layer is not None
    else:
        wanted = torch.float16 if kind == "fp16" else torch.bfloat16
        assert all(v.dtype == wanted for v in stored.values() if v.is_floating_point())
        assert not _dynamic_int8_layers(translator.net)
        for name, value in translator.net.state_dict().items():
            assert torch.equal(value, original[name].to(wanted).float()), name
    assert len(translator.translate(SOURCES)) == len(SOURCES) and translator.translate([""]) == [""]


def test_int8_language_model_and_classifier_predict_close_to_float32(lm_bundle: Path, classifier_bundle: Path,
                                                                    tmp_path: Path) -> None:
    lm, lm8 = seq2text.load(lm_bundle), seq2text.load(compress_bundle(lm_bundle, tmp_path / "lm8", "int8"))
    assert lm8.perplexity(TEXTS) == pytest.approx(lm.perplexity(TEXTS), rel=0.05)
    cls = seq2text.load(classifier_bundle)
    cls8 = seq2text.load(compress_bundle(classifier_bundle, tmp_path / "cls8", "int8"))
    assert _dynamic_int8_layers(cls8.net)
    probabilities, probabilities8 = cls.probabilities(TEXTS), cls8.probabilities(TEXTS)
    assert torch.allclose(probabilities, probabilities8, atol=0.05)


def test_compress_refuses_what_it_cannot_do(translator_bundle: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="source bundle"):
        compress_bundle(translator_bundle, translator_bundle, "int8")
    with pytest.raises(ConfigError, match="unknown compression"):
        compress_bundle(translator_bundle, tmp_path / "x", "int4")
    once = compress_bundle(translator_bundle, tmp_path / "once", "fp16")
    with pytest.raises(BundleError, match="already compressed"):
        compress_bundle(once, tmp_path / "twice", "int8")
    with pytest.raises(SystemExit):
        main(["compress", "--model", str(translator_bundle), "--output", str(tmp_path / "y"), "--int8", "--fp16"])
    capsys.readouterr()
    int8 = compress_bundle(translator_bundle, tmp_path / "int8", "int8")
    weights = load_file(int8 / "model.safetensors")
    name = next(k for k in weights if k.endswith(SCALE_SUFFIX))
    weights[name] = weights[name][:-1]
    save_file(weights, str(int8 / "model.safetensors"))
    with pytest.raises(BundleError, match="corrupt"):
        seq2text.load(int8)
    monkeypatch.setattr("seq2text.bundles.compression.quantized_engines", lambda: [])
    with pytest.raises(BundleError, match="no quantised CPU engine"):
        compress_bundle(translator_bundle, tmp_path / "never", "int8")
    assert not (tmp_path / "never").exists()
