"""The `seq2text` command: LightningCLI for fit/validate/test, plus tokenizer, generate and evaluate.

    seq2text fit --config recipes/ptb_lstm_small.yaml [--budget 15m] [--bundle DIR]
    seq2text test --config recipes/ptb_lstm_small.yaml --ckpt_path last.ckpt
    seq2text tokenizer train --input train.txt --model-type unigram --vocab-size 8000 --output tok.model
    seq2text translate --model DIR [--beam 5] [--batch-size 64] < source.de > output.en
    seq2text evaluate --model DIR --src test.de --ref test.en [--beam 5]
    seq2text push --model DIR --repo user/name [--private]    (then: --model hf://user/name anywhere)
    seq2text prepare --config recipes/wikitext103_lstm.yaml [--data.KEY VALUE ...]
    (and generate, classify, forecast, plot, average, compress, serve: `seq2text --help`)

parser.py: the argparse parser; training.py: fit/validate/test (LightningCLI) and prepare; prediction.py: evaluate,
classify, translate, forecast; commands.py: the dispatch of the rest.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from seq2text.cli.commands import _run_tool
from seq2text.cli.parser import _build_parser
from seq2text.cli.training import LIGHTNING_COMMANDS, _lightning_main, _prepare
from seq2text.cli.training import _lightning_cli_class as _lightning_cli_class  # the CLI class, for tests
from seq2text.errors import Seq2TextError

__all__ = ["main"]


# third-party lines that bury seq2text's own (warnings, by message; Lightning's log records, by their start)
QUIET_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)", r".*is not supported by the model summary",
                  r".*does not have many workers", r".*torch\.ao\.quantization", r".*`srun` command is available",
                  r"LightningCLI's args parameter is intended")
# (the seed is in the recipe, and seq2text's own line names the device and precision it chose)
QUIET_LOG_STARTS = ("💡 Tip", "Seed set to", "GPU available: False", "TPU available", "HPU available",
                    "IPU available")


class _DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith(QUIET_LOG_STARTS) and "] Seed set to" not in message  # "[rank: 1] Seed …"


def quiet_dependencies() -> None:
    """Filters the dependencies' warnings and tips that a normal run would print (decided once, at the entry)."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning_fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdvertisements) for f in logger.filters):
            logger.addFilter(_DropAdvertisements())


def main(argv: list[str] | None = None) -> int:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if from_command_line and argv[:1] == ["serve"] and "torch" not in sys.modules:
        # the model processes share the cores with the HTTP side (and often its clients): OpenMP must not spin
        # after each parallel region. It reads the policy once, when torch loads it, so it is set here, first.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    quiet_dependencies()
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            _lightning_main(argv)
            return 0
        parser = _build_parser()
        args, extra = parser.parse_known_args(argv)
        if args.command == "prepare":
            _prepare(args, extra)
        elif extra:
            parser.parse_args(argv)  # the usual message for unknown arguments
        elif args.command is None:
            parser.print_help()
        else:
            _run_tool(args)
    except Exception as error:  # noqa: BLE001 - user errors arrive wrapped (e.g. by jsonargparse)
        found = _user_error(error)
        if found is None:
            raise
        print(f"seq2text: error: {found}", file=sys.stderr)
        return 1
    return 0


def _user_error(error: BaseException | None) -> Seq2TextError | None:
    """The Seq2TextError behind `error`: itself, or one it was raised from (jsonargparse wraps them)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, Seq2TextError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
