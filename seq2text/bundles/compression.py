"""Smaller bundles for CPU inference: half-precision weight storage, and int8 weights run by dynamic int8
quantisation (`seq2text compress`).

    fp16 / bf16   every floating weight stored in 16 bits (half the size), loaded back to float32
    int8          every matrix of at least MIN_INT8_SIZE entries stored as int8 with a float32 scale per row
                  (about a quarter of the size); at load the Linear, LSTM and GRU layers (and cells) run as
                  int8 kernels through `torch.ao.quantization.quantize_dynamic`

The bundle's config records what it holds (`compression`: kind, source bundle and its size).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from seq2text.bundles.io import SCALE_SUFFIX, bundle_size, check_derived_target, read_bundle, save_derived_bundle
from seq2text.errors import BundleError, ConfigError

__all__ = ["Compression", "COMPRESSIONS", "MIN_INT8_SIZE", "compress_bundle", "quantize_rows", "quantize_network",
           "quantized_engines"]

Compression = Literal["fp16", "bf16", "int8"]
COMPRESSIONS = ("fp16", "bf16", "int8")
MIN_INT8_SIZE = 256  # smaller matrices (and every vector) stay float32: too small to matter for size
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_DYNAMIC_LAYERS = {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell}


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantisation per row: weight (rows, cols) float → int8 (rows, cols) and scales (rows,)
    with weight ≈ int8 × scale[:, None]."""
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # (rows,)
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale.float()


def _stored(weights: dict[str, torch.Tensor], kind: Compression) -> dict[str, torch.Tensor]:
    if kind in _DTYPES:
        return {k: v.to(_DTYPES[kind]) if v.is_floating_point() else v for k, v in weights.items()}
    stored = {}
    for name, value in weights.items():
        if value.is_floating_point() and value.dim() == 2 and value.numel() >= MIN_INT8_SIZE:
            stored[name], stored[name + SCALE_SUFFIX] = quantize_rows(value.float())
        else:
            stored[name] = value
    return stored


def compress_bundle(source: str | Path, output: str | Path, kind: Compression) -> Path:
    """Writes a compressed copy of the float32 bundle `source` to `output` and returns its path."""
    if kind not in COMPRESSIONS:
        raise ConfigError(f"unknown compression {kind!r}; choose one of {', '.join(COMPRESSIONS)}")
    check_derived_target(source, output)
    bundle = read_bundle(source)
    if bundle.config.get("compression"):
        raise BundleError(f"{source} is already compressed ({bundle.config['compression']['kind']}); compress the "
                          "original float32 bundle instead")
    if kind == "int8":
        quantize_network(nn.Linear(1, 1))  # refuse here, before writing, where int8 cannot run
    compression = {"kind": kind, "source": str(bundle.path), "source_bytes": bundle_size(bundle.path)}
    metrics = {**bundle.metrics, "scores_measured_on": "the uncompressed source bundle"}
    return save_derived_bundle(bundle, output, _stored(bundle.weights, kind), metrics, compression=compression)


def quantized_engines() -> list[str]:
    """The quantised CPU engines this torch build has (empty: int8 bundles cannot run)."""
    return [engine for engine in torch.backends.quantized.supported_engines if engine != "none"]


def quantize_network(net: nn.Module) -> nn.Module:
    """`net` with its Linear/LSTM/GRU layers (and cells) swapped for dynamic int8 ones (CPU inference only); a
    BundleError where this torch build cannot run them."""
    if not quantized_engines():
        raise BundleError("this torch build has no quantised CPU engine (fbgemm/x86/qnnpack), so an int8 bundle "
                          "cannot run here; use the fp16 bundle (seq2text compress --fp16) or the float32 one")
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        raise BundleError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic, so an int8 "
                          "bundle cannot run here; use the fp16 bundle (seq2text compress --fp16)") from None
    if hasattr(net, "untie_output"):  # a tied output projection becomes a Linear, so that it is quantised too
        net.untie_output()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice (torchao is its successor)
        return quantize_dynamic(net.eval(), _DYNAMIC_LAYERS, dtype=torch.qint8)
