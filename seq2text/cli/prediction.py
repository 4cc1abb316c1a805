"""The commands that predict with bundles: evaluate (each task's own evaluation, through the registry), classify and
translate (stdin lines in batches, stdout lines), forecast (a table in, CSV out)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from itertools import islice

from seq2text.errors import DataError, Seq2TextError

__all__ = ["_classify", "_evaluate", "_forecast", "_translate"]


def _forecast(args: argparse.Namespace) -> None:
    from seq2text.predict.forecaster import Forecaster
    from seq2text.predict.loading import load
    from seq2text.text.textio import atomic_write_text
    table = load(args.model, Forecaster.task).forecast(args.input, args.horizon).to_csv(index=False)
    if args.output:
        atomic_write_text(args.output, table)
    else:
        sys.stdout.write(table)


def _evaluate(args: argparse.Namespace) -> None:
    """Prints the scores of a bundle (or ensemble) on files, as its task evaluates (the registry's `evaluate`)."""
    from seq2text.predict.evaluation import EvaluationFiles
    from seq2text.predict.loading import load
    from seq2text.registry import task_parts
    predictor = load(args.model)
    evaluate = task_parts(predictor.task).evaluate
    if evaluate is None:
        raise Seq2TextError(f"{args.model[0]} holds a {predictor.task} model, which `seq2text evaluate` does not "
                            "score: its test scores are in the bundle's metrics.json (`seq2text test` scores again)")
    files = EvaluationFiles(tuple(args.model), args.input, args.text_column, args.label_column, args.src, args.ref,
                            args.beam, args.batch_size, args.output)
    print(json.dumps(evaluate(predictor, files), ensure_ascii=False))


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin as strict UTF-8, without line endings (a DataError names a bad line)."""
    stream = getattr(sys.stdin, "buffer", None)
    for number, raw in enumerate(stream if stream is not None else sys.stdin, start=1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as error:
            raise DataError(f"stdin, line {number}: invalid UTF-8 ({error.reason}); convert the input to UTF-8"
                            ) from None
        yield line.rstrip("\r\n")


def _stdin_batches(size: int) -> Iterator[list[str]]:
    """Stdin lines in lists of at most `size` (never empty), so memory stays bounded."""
    lines = _stdin_lines()
    while batch := list(islice(lines, size)):
        yield batch


def _classify(args: argparse.Namespace) -> None:
    """Streams stdin through a classifier in batches of `--batch-lines` lines."""
    from seq2text.predict.classifier import Classifier
    from seq2text.predict.loading import load
    if args.batch_lines < 1:
        raise Seq2TextError("--batch-lines must be a positive integer")
    classifier = load(args.model, Classifier.task)
    for batch in _stdin_batches(args.batch_lines):
        rows = [json.dumps(p) for p in classifier.predict_proba(batch)] if args.proba else classifier.predict(batch)
        sys.stdout.write("\n".join(rows) + "\n")
        sys.stdout.flush()


def _translate(args: argparse.Namespace) -> None:
    """Streams stdin through a translator in batches of `--batch-size` lines."""
    from seq2text.bundles.plot import attention_plotter
    from seq2text.predict.loading import load
    from seq2text.predict.translator import Translator
    if args.batch_size < 1 or (args.beam is not None and args.beam < 1):
        raise Seq2TextError("--batch-size and --beam must be positive integers")
    plot = attention_plotter() if args.plot_attention else None
    translator = load(args.model, Translator.task)
    for batch in _stdin_batches(args.batch_size):
        found = translator.translate_nbest(batch, beam_size=args.beam, return_attention=plot is not None)
        sys.stdout.write("\n".join(hyps[0].text for hyps in found) + "\n")
        sys.stdout.flush()
        first = next((hyps[0] for hyps in found if hyps[0].attention is not None), None) if plot else None
        if first is not None:
            plot(first, args.plot_attention)
            print(f"attention of the first sentence: {args.plot_attention}", file=sys.stderr)
            plot = None
