"""The commands that predict with bundles: evaluate (perplexity, classification scores, sacreBLEU/chrF/TER),
classify and translate (stdin lines in batches, stdout lines), forecast (a table in, CSV out)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from seq2text.errors import Seq2TextError

__all__ = ["_classify", "_evaluate", "_forecast", "_translate"]


def _forecast(args: argparse.Namespace) -> None:
    from seq2text.predict.forecaster import Forecaster
    from seq2text.text.textio import atomic_write_text

    table = Forecaster.load(args.model).forecast(args.input, args.horizon).to_csv(index=False)
    if args.output:
        atomic_write_text(args.output, table)
    else:
        sys.stdout.write(table)


def _evaluate(args: argparse.Namespace) -> None:
    from seq2text.predict.loading import load
    from seq2text.text.textio import read_lines

    predictor = load(args.model[0] if len(args.model) == 1 else args.model)
    if predictor.task == "translation":
        _evaluate_translation(args, predictor)
        return
    if args.input is None:
        raise Seq2TextError(f"{args.model[0]} holds a {predictor.task} model: give --input FILE")
    if predictor.task == "classification":
        _evaluate_classifier(args, predictor)
        return
    lines = read_lines(args.input)
    print(json.dumps({"perplexity": predictor.perplexity(lines), "lines": len(lines), "input": args.input}))


def _evaluate_classifier(args: argparse.Namespace, classifier: object) -> None:
    """Prints accuracy, macro-F1 and confusion counts of a classifier (or ensemble) on a labeled file."""
    from seq2text.text.reading import read_labeled

    text_column, label_column = args.text_column or classifier.columns[0], args.label_column or classifier.columns[1]
    texts, gold = read_labeled(args.input, text_column, label_column)
    scores = classifier.evaluate(texts, gold)
    print(json.dumps({**scores, "input": args.input, "models": args.model}))


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin as strict UTF-8, without line endings (a DataError names a bad line)."""
    from seq2text.errors import DataError

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
    batch: list[str] = []
    for line in _stdin_lines():
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _classify(args: argparse.Namespace) -> None:
    """Streams stdin through a classifier in batches of `--batch-lines` lines."""
    from seq2text.predict.classifier import Classifier, ClassifierEnsemble

    if args.batch_lines < 1:
        raise Seq2TextError("--batch-lines must be a positive integer")
    classifier = Classifier.load(args.model[0]) if len(args.model) == 1 else ClassifierEnsemble.load(args.model)
    for batch in _stdin_batches(args.batch_lines):
        rows = [json.dumps(p) for p in classifier.predict_proba(batch)] if args.proba else classifier.predict(batch)
        sys.stdout.write("\n".join(rows) + "\n")
        sys.stdout.flush()


def _translate(args: argparse.Namespace) -> None:
    """Streams stdin through a translator in batches of `--batch-size` lines."""
    from seq2text.bundles.plot import attention_plotter
    from seq2text.predict.translator import Translator, TranslatorEnsemble

    if args.batch_size < 1 or (args.beam is not None and args.beam < 1):
        raise Seq2TextError("--batch-size and --beam must be positive integers")
    plot = attention_plotter() if args.plot_attention else None
    translator = Translator.load(args.model[0]) if len(args.model) == 1 else TranslatorEnsemble.load(args.model)
    for batch in _stdin_batches(args.batch_size):
        found = translator.translate_nbest(batch, beam_size=args.beam, return_attention=plot is not None)
        sys.stdout.write("\n".join(hyps[0].text for hyps in found) + "\n")
        sys.stdout.flush()
        first = next((hyps[0] for hyps in found if hyps[0].attention is not None), None) if plot else None
        if first is not None:
            plot(first, args.plot_attention)
            print(f"attention of the first sentence: {args.plot_attention}", file=sys.stderr)
            plot = None


def _evaluate_translation(args: argparse.Namespace, translator: object) -> None:
    """Prints sacreBLEU BLEU/chrF/TER (scores and signatures) of --src translated against the raw --ref."""
    from seq2text.predict.metrics import translation_scores
    from seq2text.text.reading import read_parallel
    from seq2text.text.textio import atomic_write_text

    if args.src is None or args.ref is None:
        raise Seq2TextError(f"{args.model[0]} holds a translation model: give --src FILE and --ref FILE")
    if args.batch_size < 1 or (args.beam is not None and args.beam < 1):
        raise Seq2TextError("--batch-size and --beam must be positive integers")
    sources, references = read_parallel(args.src, args.ref)
    hypotheses = translator.translate(sources, beam_size=args.beam, batch_size=args.batch_size)
    if args.output:
        atomic_write_text(args.output, "\n".join(hypotheses) + "\n")
    scores = translation_scores(hypotheses, references)
    result: dict[str, object] = {}
    for name, score in scores.items():
        result[name], result[f"{name}_signature"] = round(score.score, 2), score.signature
    result.update({"bleu_summary": scores["bleu"].text, "lines": len(sources),
                   "beam": args.beam or translator.search.beam_size,
                   "src": args.src, "ref": args.ref})
    print(json.dumps(result, ensure_ascii=False))
