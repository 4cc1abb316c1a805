"""The `seq2text` command: LightningCLI for fit/validate/test, plus tokenizer, generate and evaluate.

    seq2text fit --config recipes/ptb_lstm_small.yaml [--budget 15m] [--bundle DIR]
    seq2text test --config recipes/ptb_lstm_small.yaml --ckpt_path last.ckpt
    seq2text tokenizer train --input train.txt --model-type unigram --vocab-size 8000 --output tok.model
    seq2text generate --model DIR --prompt "the company" --max-tokens 30
    seq2text evaluate --model DIR --input test.txt
    seq2text classify --model DIR < texts.txt > labels.txt
    seq2text translate --model DIR [--beam 5] [--batch-size 64] < source.de > output.en
    seq2text evaluate --model DIR --src test.de --ref test.en [--beam 5]
    seq2text plot --run runs/NAME --output curves.png [--metrics train/loss val/loss]
    seq2text push --model DIR --repo user/name [--private]    (then: --model hf://user/name anywhere)
    seq2text prepare --config recipes/wikitext103_lstm.yaml [--data.KEY VALUE ...]
    seq2text prepare --input 'corpus/*.txt' --tokenizer-model tok.model [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from seq2text.errors import Seq2TextError

__all__ = ["main"]

LIGHTNING_COMMANDS = ("fit", "validate", "test")
_COMMAND_START = time.perf_counter()  # when the command's Python began (what StartupTime measures from)


# third-party lines that bury seq2text's own (warnings, by message; Lightning's log records, by their start)
QUIET_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)", r".*is not supported by the model summary",
                  r".*does not have many workers", r".*torch\.ao\.quantization", r".*`srun` command is available",
                  r"LightningCLI's args parameter is intended")
QUIET_LOG_STARTS = ("💡 Tip",)


class _DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_LOG_STARTS)


def quiet_dependencies() -> None:
    """Filters the dependencies' warnings and tips that a normal run would print (decided once, at the entry)."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdvertisements) for f in logger.filters):
            logger.addFilter(_DropAdvertisements())


def _lightning_cli_class() -> type:
    from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

    from seq2text.tasks.callbacks import ExactResume, StartupTime, ValidationLine, WallClockBudget
    from seq2text.tasks.trainer import Trainer

    imports_done = time.perf_counter()

    class Seq2TextCLI(LightningCLI):
        """LightningCLI with seq2text's links and options: `--budget`, `--bundle`, `--test_after_fit`, and
        seq2text's `Trainer` (`precision: auto`)."""

        def __init__(self, *args: object, trainer_class: type = Trainer, **kwargs: object) -> None:
            super().__init__(*args, trainer_class=trainer_class, **kwargs)

        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")
            parser.add_argument("--budget", type=str | None, default=None,
                                help="wall-clock training budget (e.g. 15m, 1h); LR schedules anneal to it")
            parser.add_argument("--bundle", type=str | None, default=None,
                                help="where fit writes the model bundle (default: <log dir>/bundle)")
            parser.add_argument("--test_after_fit", type=bool, default=True,
                                help="after fit, evaluate on the test split and store the metrics in the bundle")
            parser.set_defaults({"trainer.use_distributed_sampler": False})

        def instantiate_trainer(self, **kwargs: object):  # noqa: ANN201 - Lightning's signature
            from pytorch_lightning.plugins.io import TorchCheckpointIO

            from seq2text.tasks.checkpoint_io import AtomicCheckpointIO

            trainer = super().instantiate_trainer(**kwargs)
            trainer.callbacks.extend([ExactResume(), StartupTime(_COMMAND_START, imports_done)])
            if not trainer.progress_bar_callback:  # otherwise the bar shows the same after each epoch
                trainer.callbacks.append(ValidationLine())
            if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a plugin the recipe chose
                trainer.strategy.checkpoint_io = AtomicCheckpointIO()
            budget = (self.config[self.subcommand] if self.subcommand else self.config).get("budget")
            if budget:
                trainer.callbacks.append(WallClockBudget(budget))
            return trainer

        def before_instantiate_classes(self) -> None:
            """Refuses a precision the hardware cannot run before any class is built or file written."""
            from seq2text.hardware import resolve_precision

            trainer = (self.config[self.subcommand] if self.subcommand else self.config).get("trainer") or {}
            resolve_precision(trainer.get("precision"), trainer.get("accelerator") or "auto")

        def before_fit(self) -> None:
            from seq2text.bundle import check_bundle_target

            bundle = self.config[self.subcommand].get("bundle")
            if bundle:  # fail before training, not after it
                check_bundle_target(bundle)

        def _parse_ckpt_path(self) -> None:
            """Checks `--ckpt_path` before Lightning takes the model's hyperparameters from it."""
            subcommand = self.config.get("subcommand")
            ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
            if ckpt and ckpt not in ("last", "best", "hpc", "registry"):
                from seq2text.tasks.checkpoint_io import check_checkpoint

                check_checkpoint(ckpt, self.config[subcommand].get("model"))
            super()._parse_ckpt_path()

        def after_fit(self) -> None:
            from seq2text.bundle import export_bundle

            config = self.config[self.subcommand]
            metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
            for callback in self.trainer.callbacks:
                if isinstance(callback, WallClockBudget):
                    metrics["train_seconds"] = callback.elapsed()
            metrics["global_step"] = self.trainer.global_step
            metrics["epochs"] = self.trainer.current_epoch
            if config.get("test_after_fit"):
                results = self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
                metrics.update({k: float(v) for k, v in results[0].items()})
            metrics.update(getattr(self.model, "bundle_metrics", dict)())  # e.g. sacreBLEU signatures
            choice = getattr(self.trainer, "precision_choice", None)
            if choice is not None:
                metrics.update(choice.as_record())
            if self.trainer.is_global_zero:
                target = config.get("bundle") or Path(self.trainer.log_dir or ".") / "bundle"
                path = export_bundle(self.model, self.datamodule, target, metrics)
                shown = {k: round(v, 4) for k, v in metrics.items()
                         if k.startswith(("test/", "val/")) and isinstance(v, int | float)}
                print(f"\nbundle: {path}\nmetrics: {json.dumps(shown)}\n"
                      f"use it: python -c \"import seq2text; m = seq2text.load('{path}'); ...\"", flush=True)

    return Seq2TextCLI


def _lightning_main(args: list[str]) -> None:
    cli_class = _lightning_cli_class()
    cli_class(model_class=None, datamodule_class=None, subclass_mode_model=True, subclass_mode_data=True,
              args=args, save_config_kwargs={"overwrite": True}, auto_configure_optimizers=False)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2text", description="Recurrent NLP: tokenizers, language models, "
                                     "classifiers and translation. Training: seq2text fit|validate|test --config "
                                     "RECIPE.yaml (see `seq2text fit --help`).")
    sub = parser.add_subparsers(dest="command",
                                metavar="{fit,validate,test,tokenizer,vectors,generate,evaluate,classify,translate,forecast,"
                                "average,compress,serve,plot,push}")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"{name} a model from a YAML recipe (LightningCLI)", add_help=False)
    tok = sub.add_parser("tokenizer", help="train a SentencePiece tokenizer").add_subparsers(dest="action")
    train = tok.add_parser("train", help="train a tokenizer model")
    train.add_argument("--input", nargs="+", required=True, help="UTF-8 text files, one sentence per line")
    train.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "word", "char"])
    train.add_argument("--vocab-size", type=int, default=None, help="with the 4 special ids; word/char: all if unset")
    train.add_argument("--user-symbols", nargs="*", default=[], help="pieces never split")
    train.add_argument("--output", required=True, help="where to write the .model file")
    vec = sub.add_parser("vectors", help="train word vectors (PPMI-SVD) on unlabeled text, in the word2vec text "
                         "format that model.word_vectors reads (for when pretrained vectors cannot be downloaded)")
    vec.add_argument("--input", nargs="+", required=True,
                     help="UTF-8 text files, one text per line; with --text-column, TSV/CSV files with a header")
    vec.add_argument("--text-column", default=None, help="read this column of TSV/CSV inputs")
    vec.add_argument("--output", required=True, help="where to write the vectors")
    vec.add_argument("--words", default=None, help="also write the words, one per line, for "
                     "data.tokenizer_extra_text (so that a word tokenizer gives them ids)")
    vec.add_argument("--dim", type=int, default=300, help="vector width (= the classifier's emb_size)")
    vec.add_argument("--window", type=int, default=5, help="context words each side")
    vec.add_argument("--min-count", type=int, default=5, help="rarer words get no vector")
    vec.add_argument("--max-vocab", type=int, default=None, help="keep at most this many frequent words")
    vec.add_argument("--ptb", action="store_true", help="lowercase and split words as the Penn Treebank and SST "
                     "do (do n't, it 's, punctuation apart); default: whitespace-separated words as they are")
    gen = sub.add_parser("generate", help="sample text from a language model bundle")
    gen.add_argument("--model", required=True, help="bundle directory")
    gen.add_argument("--prompt", default="", help="text to continue (empty: start a new line)")
    gen.add_argument("--max-tokens", type=int, default=50)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=None)
    gen.add_argument("--seed", type=int, default=None)
    ev = sub.add_parser("evaluate", help="score a bundle on files (language models: perplexity of --input; "
                        "classifiers: accuracy, macro-F1 and confusion on the labeled TSV/CSV --input; "
                        "translation: sacreBLEU/chrF/TER of --src against the raw --ref, with signatures)")
    ev.add_argument("--model", required=True, nargs="+",
                    help="bundle directory (classifiers and translation: several bundles are scored as one "
                    "ensemble)")
    ev.add_argument("--input", default=None, help="language models: UTF-8 text file, one line per sentence; "
                    "classifiers: a TSV/CSV file with a header, a text column and a label column")
    ev.add_argument("--text-column", default=None, help="classifiers: the text column (default: the training one)")
    ev.add_argument("--label-column", default=None, help="classifiers: the label column (default: the training one)")
    ev.add_argument("--src", default=None, help="translation: source file, one sentence per line")
    ev.add_argument("--ref", default=None, help="translation: raw (untokenized) reference file, aligned with --src")
    ev.add_argument("--beam", type=int, default=None, help="translation: beam size (1 = greedy; default: the "
                    "bundle's, the beam of its training run's test)")
    ev.add_argument("--batch-size", type=int, default=64, help="translation: sentences decoded together")
    ev.add_argument("--output", default=None, help="translation: also write the hypotheses to this file")
    cls = sub.add_parser("classify", help="label texts with a classifier bundle: one text per stdin line, one "
                         "label per stdout line (an empty line gets the model's no-evidence guess)")
    cls.add_argument("--model", required=True, nargs="+",
                     help="bundle directory; several bundles predict as one ensemble (mean probabilities)")
    cls.add_argument("--batch-lines", type=int, default=512, help="lines read and labeled at a time")
    cls.add_argument("--proba", action="store_true", help="print a JSON object of class probabilities per line")
    tr = sub.add_parser("translate", help="translate stdin with a translation bundle: one sentence per line in, "
                        "one translation per line out (an empty line gives an empty line)")
    tr.add_argument("--model", required=True, nargs="+", help="bundle directory; several bundles (trained with the "
                    "same tokenizer) decode as one ensemble, their probabilities averaged at every step")
    tr.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default: the bundle's)")
    tr.add_argument("--batch-size", type=int, default=64, help="lines read and translated at a time")
    tr.add_argument("--plot-attention", default=None, metavar="PNG",
                    help="draw the attention of the first non-empty line to this PNG (needs matplotlib)")
    fc = sub.add_parser("forecast", help="forecast the next steps of each series of a table with a forecasting bundle "
                        "(CSV out: id, time, point forecast and quantiles of each value column)")
    fc.add_argument("--model", required=True, help="bundle directory")
    fc.add_argument("--input", required=True, help="CSV/TSV/Parquet history with the training columns, at least "
                    "`lookback` steps per series, spaced as in training")
    fc.add_argument("--horizon", type=int, default=None, help="steps to forecast (default: the trained horizon)")
    fc.add_argument("--output", default=None, help="write the CSV here (default: standard output)")
    avg = sub.add_parser("average", help="average the weights of a run's last checkpoints into a new bundle "
                         "(train with --config recipes/overlays/keep_last_5.yaml to keep them)")
    avg.add_argument("--model", required=True, help="a bundle of the same run (gives tokenizer, reading and config)")
    avg.add_argument("--checkpoints", required=True, nargs="+", help=".ckpt files, or folders searched for them")
    avg.add_argument("--last", type=int, default=None, help="average only the newest N (by epoch and step)")
    avg.add_argument("--output", required=True, help="the new bundle's directory")
    cmp = sub.add_parser("compress", help="write a smaller bundle for CPU inference: int8 weights run by dynamic "
                         "int8 quantisation, or weights stored in fp16/bf16 (see seq2text.compression)")
    cmp.add_argument("--model", required=True, help="the float32 bundle")
    cmp.add_argument("--output", required=True, help="the new bundle's directory")
    kind = cmp.add_mutually_exclusive_group(required=True)
    for name in ("int8", "fp16", "bf16"):
        kind.add_argument(f"--{name}", dest="kind", action="store_const", const=name)
    srv = sub.add_parser("serve", help="serve bundles over HTTP/JSON with dynamic batching (needs seq2text[serve])")
    srv.add_argument("--model", required=True, nargs="+", help="bundle directory; several bundles of one task "
                     "(classification, translation, forecasting) serve as one ensemble")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--max-batch-size", type=int, default=32, help="texts decoded together across requests")
    srv.add_argument("--max-wait-ms", type=float, default=10.0,
                     help="how long the first request of a batch waits for others to join it")
    srv.add_argument("--max-chars", type=int, default=2000, help="longest text a request may hold")
    srv.add_argument("--max-lines", type=int, default=64, help="most texts in one request")
    srv.add_argument("--batching", choices=("continuous", "dynamic"), default="continuous",
                     help="translation: continuous (sentences join and leave the running beam search between "
                     "steps) or dynamic (one batch per group of requests, decoded to its end)")
    srv.add_argument("--threads", type=int, default=None, help="torch threads for the model, in each model process "
                     "with --workers (default: the cores divided among the workers)")
    srv.add_argument("--workers", type=int, default=1, help="translation with continuous batching: model processes "
                     "behind the one HTTP process, each with its own copy of the model (on a CPU, one per core keeps "
                     "every core busy)")
    pic = sub.add_parser("plot", help="draw a run's training curves (loss, perplexity, BLEU/accuracy, learning rate "
                         "against the step) from its CSVLogger metrics.csv (needs seq2text[plot])")
    pic.add_argument("--run", required=True, help="run directory (its newest metrics.csv is read) or a metrics.csv")
    pic.add_argument("--output", required=True, help="the picture (.png; .pdf or .svg by suffix)")
    pic.add_argument("--metrics", nargs="+", default=None, help="columns to draw, e.g. train/loss val/loss "
                     "(default: all but counts and throughput)")
    prep = sub.add_parser("prepare", help="tokenize a recipe's data (or corpus files) once, on every core, into "
                          "memory-mapped caches that training maps instead of reading the text "
                          "(default folder: $SEQ2TEXT_PREPARED, else data/prepared)")
    prep.add_argument("--config", help="a recipe: prepare every split of its data section; --data.KEY VALUE "
                      "overrides an argument of it, as for fit")
    prep.add_argument("--input", nargs="+", help="instead of a recipe: the files or globs of one language-model "
                      "corpus, read in order")
    prep.add_argument("--tokenizer-model", help="with --input: the trained tokenizer (.model) to encode with")
    prep.add_argument("--name", default=None, help="with --input: the cache folder's prefix (default: first file)")
    prep.add_argument("--output-dir", default=None, help="with --input: where caches live")
    prep.add_argument("--workers", type=int, default=None, help="with --input: processes that tokenize "
                      "(default: every core)")
    push = sub.add_parser("push", help="upload a bundle with a generated model card to a Hugging Face Hub model repo "
                          "(needs seq2text[hub]; token: HF_TOKEN or `hf auth login`)")
    push.add_argument("--model", required=True, help="bundle directory (checked before anything is uploaded)")
    push.add_argument("--repo", required=True, help="the Hub repo, user/name (created when missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--revision", default=None, help="branch to commit to (created when missing; default: main)")
    return parser


def _hub_models(models: str | list[str]) -> str | list[str]:
    """`--model` with each `hf://user/repo[@revision]` replaced by its snapshot directory (seq2text.hub.resolve)."""
    from seq2text.hub import is_hub_address, resolve

    if isinstance(models, str):
        return str(resolve(models)) if is_hub_address(models) else models
    return [str(resolve(model)) if is_hub_address(model) else model for model in models]


def _run_tool(args: argparse.Namespace) -> None:
    if getattr(args, "model", None) is not None:  # every --model takes a Hub address too
        args.model = _hub_models(args.model)
    if args.command == "tokenizer":
        if args.action != "train":
            raise Seq2TextError("usage: seq2text tokenizer train --input FILE... --output FILE.model")
        from seq2text.tokenizer import Tokenizer

        vocab = args.vocab_size if args.vocab_size is not None or args.model_type in ("word", "char") else 8000
        tokenizer = Tokenizer.train(args.input, args.model_type, vocab, user_symbols=args.user_symbols)
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        tokenizer.save(args.output)
        print(f"{args.output}: {args.model_type} model, {tokenizer.vocab_size} pieces")
    elif args.command == "vectors":
        _vectors(args)
    elif args.command == "plot":
        from seq2text.plot import plot_training_curves

        print(plot_training_curves(args.run, args.output, args.metrics))
    elif args.command == "push":
        from seq2text.hub import push_to_hub

        print(push_to_hub(args.model, args.repo, private=args.private, revision=args.revision))
    elif args.command == "generate":
        from seq2text.inference import LanguageModel

        lm = LanguageModel.load(args.model)
        print(args.prompt + (" " if args.prompt else "") + lm.generate(args.prompt, args.max_tokens, args.temperature,
                                                                      args.top_k, args.seed))
    elif args.command == "classify":
        _classify(args)
    elif args.command == "translate":
        _translate(args)
    elif args.command == "evaluate":
        _evaluate(args)
    elif args.command == "forecast":
        _forecast(args)
    elif args.command == "average":
        from seq2text.averaging import average_checkpoints

        path = average_checkpoints(args.model, args.checkpoints, args.output, args.last)
        print(f"averaged bundle: {path}  (score it: seq2text evaluate --model {path} ...)")
    elif args.command == "compress":
        from seq2text.bundle import bundle_size
        from seq2text.compression import compress_bundle

        path = compress_bundle(args.model, args.output, args.kind)
        sizes = f"{bundle_size(path) / 1e6:.1f} MB; source {bundle_size(args.model) / 1e6:.1f} MB"
        print(f"{args.kind} bundle: {path} ({sizes})")
    elif args.command == "serve":
        from seq2text.serve import ServeConfig, serve

        serve(args.model, ServeConfig(args.host, args.port, args.max_batch_size, args.max_wait_ms / 1000,
                                      args.max_chars, args.max_lines, batching=args.batching,
                                      threads=args.threads, workers=args.workers))


def _prepare(args: argparse.Namespace, extra: list[str]) -> None:
    """`seq2text prepare`: a recipe's splits (with `--data.KEY VALUE` overrides), or corpus files."""
    import time

    import yaml

    from seq2text.data.prepare import describe, prepare_files, prepare_recipe

    if (args.config is None) == (args.input is None):
        raise Seq2TextError("give --config RECIPE (every split of its data) or --input FILES --tokenizer-model M")
    start = time.perf_counter()
    if args.input is not None:
        if args.tokenizer_model is None or extra:
            raise Seq2TextError(f"--input needs --tokenizer-model and takes no {' '.join(extra) or 'other'} options")
        caches = {"corpus": prepare_files(args.input, args.tokenizer_model, args.name, args.output_dir, args.workers)}
    else:
        if len(extra) % 2 or not all(key.startswith("--data.") for key in extra[::2]):
            raise Seq2TextError(f"unexpected {' '.join(extra)}: overrides come in pairs, --data.KEY VALUE")
        overrides = {key.removeprefix("--data.").removeprefix("init_args."): yaml.safe_load(value)
                     for key, value in zip(extra[::2], extra[1::2], strict=True)}
        caches = prepare_recipe(args.config, overrides)
        if not caches:
            raise Seq2TextError(f"{args.config}: this data module reads its data directly; nothing to prepare")
    for split, cache in caches.items():
        print(describe(split, cache))
    print(f"ready in {time.perf_counter() - start:.1f} s")


def _forecast(args: argparse.Namespace) -> None:
    from seq2text.inference import Forecaster
    from seq2text.textio import atomic_write_text

    table = Forecaster.load(args.model).forecast(args.input, args.horizon).to_csv(index=False)
    if args.output:
        atomic_write_text(args.output, table)
    else:
        sys.stdout.write(table)


def _vectors(args: argparse.Namespace) -> None:
    """Trains PPMI-SVD word vectors on the texts of `--input` and writes them to `--output`."""
    from seq2text.reading import read_labeled
    from seq2text.textio import atomic_write_text, read_lines
    from seq2text.vectors import ptb_words, train_word_vectors, write_word_vectors

    if min(args.dim, args.window, args.min_count) < 1:
        raise Seq2TextError("--dim, --window and --min-count must be positive integers")
    texts = [text for path in args.input for text in (
        read_labeled(path, args.text_column, None)[0] if args.text_column else read_lines(path))]
    split = ptb_words if args.ptb else str.split
    words, vectors = train_word_vectors((split(text) for text in texts), args.dim, args.window, args.min_count,
                                        args.max_vocab)
    write_word_vectors(args.output, words, vectors)
    if args.words:
        atomic_write_text(args.words, "\n".join(words) + "\n")
    print(f"{args.output}: {len(words)} words x {args.dim} (from {len(texts)} texts)")


def _evaluate(args: argparse.Namespace) -> None:
    from seq2text.inference import load
    from seq2text.textio import read_lines

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
    from seq2text.reading import read_labeled

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
    from seq2text.inference import Classifier, ClassifierEnsemble

    if args.batch_lines < 1:
        raise Seq2TextError("--batch-lines must be a positive integer")
    classifier = Classifier.load(args.model[0]) if len(args.model) == 1 else ClassifierEnsemble.load(args.model)
    for batch in _stdin_batches(args.batch_lines):
        rows = [json.dumps(p) for p in classifier.predict_proba(batch)] if args.proba else classifier.predict(batch)
        sys.stdout.write("\n".join(rows) + "\n")
        sys.stdout.flush()


def _translate(args: argparse.Namespace) -> None:
    """Streams stdin through a translator in batches of `--batch-size` lines."""
    from seq2text.inference import Translator, TranslatorEnsemble
    from seq2text.plot import attention_plotter

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
    from seq2text.metrics import translation_scores
    from seq2text.reading import read_parallel
    from seq2text.textio import atomic_write_text

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
        args, extra = _build_parser().parse_known_args(argv)
        if args.command == "prepare":
            _prepare(args, extra)
            return 0
        if extra:
            _build_parser().parse_args(argv)  # the usual message for unknown arguments
        if args.command is None:
            _build_parser().print_help()
            return 0
        _run_tool(args)
    except Exception as error:  # noqa: BLE001 - user errors arrive wrapped (e.g. by jsonargparse)
        found = _user_error(error)
        if found is None:
            raise
        print(f"seq2text: error: {found}", file=sys.stderr)
        return 1
    return 0


def _user_error(error: BaseException | None) -> Seq2TextError | None:
    """The Seq2TextError behind `error`: itself, or one it was raised from (jsonargparse wraps the errors of
    the classes it instantiates in a ValueError)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, Seq2TextError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
