"""Reports what the AVX2 emulation of CI does on this machine: oneDNN's ISA, ATen's kernel level, whether a bf16
LSTM runs (on an AVX2-only CPU it fails inside oneDNN, the crash of issue 11), and what `precision: auto` picks.

Exits non-zero only when seq2text would pick bf16 under the emulation (ONEDNN_MAX_CPU_ISA=AVX2), which must never
happen; on a machine with native bf16 it says whether capping oneDNN reproduces the AVX2 crash."""

import os
import subprocess
import sys

import torch

from seq2text.hardware import cpu_bf16, resolve_precision

verbose = subprocess.run([sys.executable, "-c", "import torch; torch.nn.LSTM(4, 4)(torch.randn(1, 2, 4))"],
                         env={**os.environ, "ONEDNN_VERBOSE": "1"}, capture_output=True, text=True).stdout
isa = next((line.split("isa:", 1)[1] for line in verbose.splitlines() if "isa:" in line), "unknown")
try:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.nn.LSTM(8, 8, batch_first=True)(torch.randn(2, 3, 8))
    lstm = "runs"
except RuntimeError as error:
    lstm = f"fails ({str(error).splitlines()[0][:70]}...)"
choice = resolve_precision("auto")
print(f"emulation check: ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')} "
      f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')}; oneDNN ISA: {isa}; "
      f"ATen: {torch.backends.cpu.get_cpu_capability()}; bf16 LSTM {lstm}; native bf16: {cpu_bf16()}; "
      f"auto -> {choice.precision}")
if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2" and choice.precision != "32-true":
    sys.exit("emulation check: precision auto must be 32-true under ONEDNN_MAX_CPU_ISA=AVX2")
