"""The dispatch of the commands that are not LightningCLI's or `prepare` (the small ones inline). Every `--model`
takes a Hub address (`hf://user/repo[@revision]`) too."""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2text.cli.prediction import _classify, _evaluate, _forecast, _translate
from seq2text.errors import Seq2TextError

__all__ = ["_run_tool"]


def _run_tool(args: argparse.Namespace) -> None:
    if getattr(args, "model", None) is not None:  # each hf://user/repo[@revision] becomes its snapshot directory
        from seq2text.bundles.hub import is_hub_address, resolve
        local = [str(resolve(model)) if is_hub_address(model) else model for model in
                 ([args.model] if isinstance(args.model, str) else args.model)]
        args.model = local[0] if isinstance(args.model, str) else local
    by_function = {"vectors": _vectors, "classify": _classify, "translate": _translate, "evaluate": _evaluate,
                   "forecast": _forecast}
    if args.command in by_function:
        by_function[args.command](args)
    elif args.command == "tokenizer":
        if args.action != "train":
            raise Seq2TextError("usage: seq2text tokenizer train --input FILE... --output FILE.model")
        from seq2text.text.tokenizer import Tokenizer
        vocab = args.vocab_size if args.vocab_size is not None or args.model_type in ("word", "char") else 8000
        tokenizer = Tokenizer.train(args.input, args.model_type, vocab, user_symbols=args.user_symbols)
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        tokenizer.save(args.output)
        print(f"{args.output}: {args.model_type} model, {tokenizer.vocab_size} pieces")
    elif args.command == "plot":
        from seq2text.bundles.plot import plot_training_curves
        print(plot_training_curves(args.run, args.output, args.metrics))
    elif args.command == "push":
        from seq2text.bundles.hub import push_to_hub
        print(push_to_hub(args.model, args.repo, private=args.private, revision=args.revision))
    elif args.command == "generate":
        from seq2text.predict.language_model import LanguageModel
        from seq2text.predict.loading import load
        lm = load(args.model, LanguageModel.task)
        print(args.prompt + (" " if args.prompt else "") + lm.generate(args.prompt, args.max_tokens, args.temperature,
                                                                      args.top_k, args.seed))
    elif args.command == "average":
        from seq2text.bundles.averaging import average_checkpoints
        path = average_checkpoints(args.model, args.checkpoints, args.output, args.last)
        print(f"averaged bundle: {path}  (score it: seq2text evaluate --model {path} ...)")
    elif args.command == "compress":
        from seq2text.bundles.compression import compress_bundle
        from seq2text.bundles.io import bundle_size
        path = compress_bundle(args.model, args.output, args.kind)
        sizes = f"{bundle_size(path) / 1e6:.1f} MB; source {bundle_size(args.model) / 1e6:.1f} MB"
        print(f"{args.kind} bundle: {path} ({sizes})")
    elif args.command == "serve":
        from seq2text.serving.server import ServeConfig, serve
        serve(args.model, ServeConfig(args.host, args.port, args.max_batch_size, args.max_wait_ms / 1000,
                                      args.max_chars, args.max_lines, batching=args.batching,
                                      threads=args.threads, workers=args.workers,
                                      timeout=args.timeout or None))


def _vectors(args: argparse.Namespace) -> None:
    """Trains PPMI-SVD word vectors on the texts of `--input` and writes them to `--output`."""
    from seq2text.text.reading import read_labeled
    from seq2text.text.textio import atomic_write_text, read_lines
    from seq2text.text.vectors import ptb_words, train_word_vectors, write_word_vectors
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
