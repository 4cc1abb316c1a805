"""The argparse parser of the `seq2text` command (fit/validate/test are LightningCLI's: only named here)."""

from __future__ import annotations

import argparse

from seq2text.cli.training import LIGHTNING_COMMANDS

__all__ = ["_build_parser"]


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
    gen.add_argument("--model", required=True, nargs="+", help="bundle directory; several bundles (one tokenizer) "
                     "sample from their mixture")
    gen.add_argument("--prompt", default="", help="text to continue (empty: start a new line)")
    for flag, kind, default in (("--max-tokens", int, 50), ("--temperature", float, 1.0), ("--top-k", int, None),
                                ("--seed", int, None)):
        gen.add_argument(flag, type=kind, default=default)
    ev = sub.add_parser("evaluate", help="score a bundle on files (language models: perplexity of --input; "
                        "classifiers, regressors: accuracy, macro-F1 and confusion, or MAE and RMSE, on the labeled "
                        "TSV/CSV --input; translation: sacreBLEU/chrF/TER of --src against the raw --ref, with "
                        "signatures)")
    ev.add_argument("--model", required=True, nargs="+",
                    help="bundle directory (several bundles of one task are scored as one ensemble)")
    ev.add_argument("--input", default=None, help="language models: UTF-8 text file, one line per sentence; "
                    "classifiers, regressors: a TSV/CSV file with a header, a text column and a label column")
    ev.add_argument("--text-column", default=None, help="labeled --input: the text column (default: the training one)")
    ev.add_argument("--label-column", default=None, help="labeled --input: the label (or target) column (default: "
                    "the training one)")
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
    fc.add_argument("--model", required=True, nargs="+", help="bundle directory; several bundles of one table "
                    "forecast as one ensemble")
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
                         "int8 quantisation, or weights stored in fp16/bf16 (see seq2text.bundles.compression)")
    cmp.add_argument("--model", required=True, help="the float32 bundle")
    cmp.add_argument("--output", required=True, help="the new bundle's directory")
    kind = cmp.add_mutually_exclusive_group(required=True)
    for name in ("int8", "fp16", "bf16"):
        kind.add_argument(f"--{name}", dest="kind", action="store_const", const=name)
    srv = sub.add_parser("serve", help="serve bundles over HTTP/JSON with dynamic batching (needs seq2text[serve])")
    srv.add_argument("--model", required=True, nargs="+", help="bundle directory; several bundles of one task "
                     "serve as one ensemble")
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
    srv.add_argument("--timeout", type=float, default=60.0, help="seconds a request may wait for its answer "
                     "before a 504 (0: no limit)")
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
