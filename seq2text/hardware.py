"""What the hardware runs well: the training precision that `precision: auto` resolves to, and why (torch only).

`auto` picks bf16-mixed only where bf16 is native (CUDA with bf16, a CPU with AVX512-BF16 or AMX usable by oneDNN),
16-mixed on other CUDA devices, 32-true elsewhere; read off what the hardware *is*, never from a timing. On an
AVX2-only CPU bf16 `nn.LSTM` fails inside oneDNN and `nn.GRU` runs 6x slower: such requests raise `ConfigError`.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seq2text.errors import ConfigError

__all__ = ["OPENMP_WAIT_POLICY", "PRECISIONS", "PrecisionChoice", "cpu_bf16", "cpu_capability",
           "resolve_precision", "usable_cores", "worker_context"]

# the values a recipe or --trainer.precision may give, with Lightning's short aliases
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
_ALIASES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which its bf16 kernels still run natively
_BF16_ISAS = {"ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
              "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2"}
OPENMP_WAIT_POLICY = "OMP_WAIT_POLICY"


@dataclass(frozen=True)
class PrecisionChoice:
    """A resolved training precision: the Lightning `precision` string, what was `requested` (`auto` or an explicit
    value) and a one-line `reason`, for the log and the bundle."""

    precision: str
    requested: str
    reason: str

    def as_record(self) -> dict[str, str]:
        """The keys written into bundles and benchmark records."""
        return {"precision": self.precision, "precision_requested": self.requested,
                "precision_reason": self.reason, "cpu_capability": cpu_capability()}


def cpu_capability() -> str:
    """ATen's CPU kernel level (`AVX2`, `AVX512`, `DEFAULT`, ...)."""
    import torch  # here and below: imported where used, so that `usable_cores` costs no torch import
    return torch.backends.cpu.get_cpu_capability()


def _cpu_flags() -> set[str] | None:
    """The CPU feature flags of /proc/cpuinfo (Linux x86 `flags`, ARM `Features`); None where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return None


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> tuple[bool, str]:
    """(native, reason): True only when the CPU has AVX512-BF16 or AMX (or ARM bf16), oneDNN is not capped below
    them (ONEDNN_MAX_CPU_ISA / ATEN_CPU_CAPABILITY, as when emulating an AVX2 CPU) and reports bf16 support."""
    flags = _cpu_flags()
    if flags is not None and not flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        return False, f"CPU without native bf16 (no AVX512-BF16/AMX; ATen kernels: {cpu_capability()})"
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if isa and isa not in _BF16_ISAS:
        return False, f"oneDNN is capped at {isa} (ONEDNN_MAX_CPU_ISA), below its native bf16 kernels"
    if cpu_capability() in ("DEFAULT", "NO AVX", "AVX", "AVX2"):
        return False, f"ATen's CPU kernels run at {cpu_capability()} (no native bf16 path)"
    import torch
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, "oneDNN reports no bf16 support on this CPU"
    return True, f"CPU with native bf16 (AVX512-BF16/AMX; ATen kernels: {cpu_capability()}, oneDNN bf16 supported)"


def _device_kind(accelerator: str) -> str:
    """`cuda`, `mps` or `cpu`: where Lightning will put the model for `accelerator` (`auto`, `gpu`, ...)."""
    import torch
    accelerator = str(accelerator or "auto").lower()
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "cuda"
    if accelerator in ("gpu", "mps", "auto") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(requested: str | int | None, accelerator: str = "auto") -> PrecisionChoice:
    """The precision to train with on this machine, for `requested` `auto` (or None) or one of `PRECISIONS` (or the
    aliases 32, 16, bf16, 64) and the trainer's `accelerator` (`auto`, `cpu`, `gpu`, `cuda`, `mps`).

    Raises:
        ConfigError: a misspelt value, or one this hardware cannot run, naming what would work.
    """
    text = "auto" if requested is None else _ALIASES.get(str(requested), str(requested))
    if text not in PRECISIONS:
        raise ConfigError(f"trainer.precision={requested!r} is not a precision; use one of {', '.join(PRECISIONS)} "
                          "(auto picks the fastest one this hardware runs natively)")
    device = _device_kind(accelerator)
    return _auto(device) if text == "auto" else _check_explicit(text, device)


def _auto(device: str) -> PrecisionChoice:
    import torch
    if device == "cuda":
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return PrecisionChoice("bf16-mixed" if bf16 else "16-mixed", "auto",
                               f"CUDA device {'with' if bf16 else 'without'} bf16 ({torch.cuda.get_device_name()})")
    if device == "mps":
        return PrecisionChoice("32-true", "auto", "Apple MPS: mixed precision is not verified there")
    native, reason = cpu_bf16()
    return PrecisionChoice("bf16-mixed" if native else "32-true", "auto", reason)


def _check_explicit(text: str, device: str) -> PrecisionChoice:
    import torch
    def works() -> str:
        return f"use --trainer.precision auto (here: {_auto(device).precision}) or 32-true"

    if text.startswith("16") and device != "cuda":
        raise ConfigError(f"trainer.precision={text} needs a CUDA GPU; on {device.upper()} {works()}")
    if text.startswith("bf16") and device == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ConfigError(f"trainer.precision={text}: this GPU has no bf16; use 16-mixed (or auto)")
    if text.startswith("bf16") and device == "cpu" and not cpu_bf16()[0]:
        raise ConfigError(f"trainer.precision={text} needs a CPU with native bf16 (AVX512-BF16 or AMX), and this "
                          f"one runs it badly: {cpu_bf16()[1]}. Under bf16 oneDNN's LSTM fails on such CPUs and GRU "
                          f"runs about 6x slower; {works()}")
    if text.startswith("bf16") and device == "mps":
        raise ConfigError(f"trainer.precision={text} is not verified on Apple MPS; {works()}")
    return PrecisionChoice(text, text, "given explicitly")


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the system has one, as on Linux; else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    """Where worker processes that run torch come from: forked from multiprocessing's fork server, a process that has
    imported the `preload` modules once but never ran an operator (so no threads or OpenMP state are forked), which
    makes a start or a restart cost a fork instead of a new interpreter's imports; "spawn" where there is no fork
    server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context
