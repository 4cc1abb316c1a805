"""Bundles on the Hugging Face Hub (`hf://user/repo[@revision]` addresses, model cards, push), through
huggingface_hub: an optional extra (`pip install seq2text[hub]`), imported only by the functions that reach the Hub.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from seq2text.bundles.io import BUNDLE_FILES, read_bundle, read_bundle_config
from seq2text.errors import BundleError, Seq2TextError

if TYPE_CHECKING:
    from seq2text.registry import ModelCard

__all__ = ["HUB_PREFIX", "is_hub_address", "check_repo_id", "parse_address", "resolve", "model_card", "hub_folder",
           "push_to_hub"]

HUB_PREFIX = "hf://"
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")  # the Hub's rule for a user or repo name
_METRIC_IDS = {"bleu": "bleu", "chrf": "chrf", "ter": "ter", "acc": "accuracy", "f1": "f1", "ppl": "perplexity",
               "bpc": "bpc", "mae": "mae", "rmse": "rmse", "smape": "smape", "mase": "mase"}
_COUNTS = ("tokens", "words", "examples", "windows")


def _huggingface_hub() -> ModuleType:
    try:
        import huggingface_hub
    except ImportError:
        raise Seq2TextError("reaching the Hugging Face Hub needs huggingface_hub, which is not installed: "
                            "pip install seq2text[hub] (or give a local bundle directory)") from None
    return huggingface_hub


# ------------------------------------------------------------------------------------------ addresses
def is_hub_address(address: object) -> bool:
    """True for a string `hf://...`; a Path never is one (Path("hf://a/b") reads "hf:/a/b")."""
    return isinstance(address, str) and address.startswith(HUB_PREFIX)


def check_repo_id(repo_id: str) -> str:
    """`repo_id` when it reads `user/name` with the Hub's allowed characters, else a BundleError."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(_NAME.fullmatch(p) and "--" not in p and ".." not in p for p in parts):
        raise BundleError(f"{repo_id!r} is not a Hugging Face repo id: write user/name (letters, digits, '-', '_', "
                          "'.'; no spaces, no '--' or '..'), e.g. hf://alice/multi30k-gru")
    return repo_id


def parse_address(address: str) -> tuple[str, str | None]:
    """The (repo id, revision or None) of `hf://user/repo[@revision]`; a BundleError for anything else."""
    if not is_hub_address(address):
        raise BundleError(f"{address!r} is not a Hub address; write hf://user/repo or hf://user/repo@revision")
    repo_id, at, revision = address[len(HUB_PREFIX):].partition("@")
    if at and (not revision or any(c.isspace() for c in revision)):
        raise BundleError(f"{address!r} names no revision after '@'; write hf://user/repo@main (a branch, tag or "
                          "commit hash) or drop the '@'")
    try:
        check_repo_id(repo_id)
    except BundleError as error:
        raise BundleError(f"malformed Hub address {address!r}: {error}") from None
    return repo_id, revision or None


def resolve(address: str | Path) -> Path:
    """The local bundle directory of `address`: a local path as it is; for `hf://user/repo[@revision]` the
    repo's snapshot, from the local Hugging Face cache or downloaded (a BundleError where neither works)."""
    if isinstance(address, Path):
        if str(address).startswith("hf:/"):
            raise BundleError(f"{address} looks like a Hub address turned into a Path (which drops a '/'); pass "
                              "the address as a string: 'hf://user/repo'")
        return address
    if not is_hub_address(address):
        return Path(address)
    repo_id, revision = parse_address(address)
    hub = _huggingface_hub()
    from seq2text import __version__

    try:
        folder = hub.snapshot_download(repo_id, revision=revision, library_name="seq2text", library_version=__version__)
    except Exception as error:  # noqa: BLE001 - the Hub's errors (and its HTTP client's) become one message
        if not _from_hub(error):
            raise
        raise _download_error(address, repo_id, revision, error) from error
    return Path(folder)


def _from_hub(error: Exception) -> bool:
    """Errors of huggingface_hub and of the HTTP client under it (requests, httpx or httpx2, by version)."""
    return isinstance(error, OSError | ValueError) or type(error).__module__.split(".")[0] in (
        "huggingface_hub", "requests", "urllib3", "httpx", "httpx2", "httpcore", "httpcore2")


def _download_error(address: str, repo_id: str, revision: str | None, error: Exception) -> BundleError:
    from huggingface_hub import constants
    from huggingface_hub import utils as errors

    cache = constants.HF_HUB_CACHE
    if isinstance(error, errors.RevisionNotFoundError):
        return BundleError(f"{repo_id} has no revision {revision!r} on the Hub; give an existing branch, tag or "
                           f"commit hash (hf://{repo_id}@main)")
    if isinstance(error, errors.RepositoryNotFoundError):
        return BundleError(f"{address}: the Hub has no repo {repo_id} that you may read (a typo, or a private or "
                           "gated repo: log in with `hf auth login` or set HF_TOKEN)")
    if isinstance(error, errors.LocalEntryNotFoundError):
        offline = constants.HF_HUB_OFFLINE
        why = "HF_HUB_OFFLINE=1 forbids downloads" if offline else "the Hugging Face Hub could not be reached"
        incomplete = "is only partly" if type(error).__name__ == "IncompleteSnapshotError" else "is not"  # >= 2.x
        return BundleError(
            f"cannot load {address}: {why}, and {repo_id} (revision {revision or 'main'}) {incomplete} in the local "
            f"Hugging Face cache {cache}. Fix: {'unset HF_HUB_OFFLINE' if offline else 'connect to the network'} "
            f"and load it once to cache it (or `hf download {repo_id}`; HF_HUB_CACHE chooses the cache), or give a "
            "local bundle directory")
    return BundleError(f"cannot load {address} from the Hugging Face Hub ({type(error).__name__}: {error}); check "
                       f"the network and the repo name, or give a local bundle directory (cache: {cache})")


# ------------------------------------------------------------------------------------------ model card
def _yaml_list(key: str, items: list[str]) -> list[str]:
    """`key:` and one `- item` line per item (JSON-quoted when not a plain word, which YAML reads the same)."""
    plain = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
    return [f"{key}:", *(f"- {item if plain.fullmatch(item) else json.dumps(item)}" for item in items)] if items else []


def _languages(config: dict) -> list[str]:
    """The languages a bundle's reading/data settings name (translation: source and target)."""
    found: list[str] = []
    for section in (config.get("reading") or {}, config.get("data") or {}):
        for key in ("src_lang", "trg_lang", "lang", "language"):
            value = section.get(key)
            if isinstance(value, str) and value and value not in found:
                found.append(value)
    return found


def _scores(metrics: dict) -> dict[str, float]:
    """The val/test scores of metrics.json, without counts and confusion cells."""
    return {key: float(value) for key, value in metrics.items()
            if key.startswith(("test/", "val/")) and isinstance(value, int | float) and not isinstance(value, bool)
            and key.rsplit("/", 1)[-1] not in _COUNTS and "confusion/" not in key}


def _front_matter(config: dict, metrics: dict, card: ModelCard) -> list[str]:
    net, task = config.get("net") or {}, str(config.get("task"))
    tags = ["seq2text", *([str(net["rnn_type"])] if net.get("rnn_type") else []), task.replace("_", "-")]
    names = dict.fromkeys(_METRIC_IDS[k.rsplit("/", 1)[-1]] for k in _scores(metrics)
                          if k.rsplit("/", 1)[-1] in _METRIC_IDS)
    return ["---", "library_name: seq2text", *_yaml_list("tags", tags), *_yaml_list("language", _languages(config)),
            *_yaml_list("metrics", list(names)), *([f"pipeline_tag: {card.pipeline}"] if card.pipeline else []), "---",
            ""]


def _table(title: str, rows: dict) -> list[str]:
    if not rows:
        return []
    shown = {key: json.dumps(value) if isinstance(value, list | dict | bool) or value is None else str(value)
             for key, value in rows.items()}
    cells = [f"| {key} | {value.replace('|', '&#124;')} |" for key, value in shown.items()]  # a | ends a cell
    return [f"## {title}", "", "| setting | value |", "|---|---|", *cells, ""]


def _score_section(metrics: dict) -> list[str]:
    scores = _scores(metrics)
    lines = ["## Scores", ""]
    if scores:
        lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4g} |" for k, v in sorted(scores.items())), ""]
    else:
        lines += ["No validation or test scores were recorded with this bundle.", ""]
    signatures = {k: v for k, v in metrics.items() if k.endswith(("_signature", "_summary")) and isinstance(v, str)}
    if signatures:
        lines += ["sacreBLEU signatures and summaries (scores on detokenized text, comparable across papers):", "",
                  *(f"- {key}: `{value}`" for key, value in sorted(signatures.items())), ""]
    return lines


def _training_section(metrics: dict) -> list[str]:
    rows = {"precision": metrics.get("precision"), "precision chosen because": metrics.get("precision_reason"),
            "epochs": metrics.get("epochs"), "optimizer steps": metrics.get("global_step"),
            "training seconds": round(metrics["train_seconds"]) if isinstance(metrics.get("train_seconds"), int | float)
            else None, "CPU capability": metrics.get("cpu_capability")}
    return _table("Training", {k: v for k, v in rows.items() if v is not None})


def _usage(card: ModelCard, config: dict, repo: str) -> list[str]:
    reading = config.get("reading") or config.get("data") or {}
    columns = [reading.get("id_column"), reading.get("time_column"), *(reading.get("value_columns") or [])]
    fields = {"repo": repo, "example": json.dumps(_example(reading), ensure_ascii=False),
              "columns": ", ".join(str(name) for name in columns if name)}
    command = card.command.format(**fields) if card.command else None
    return ["## How to use", "", "```bash", "pip install seq2text", "```", "", "```python", *card.imports,
            "import seq2text", "", *(line.format(**fields) for line in card.code), "```", "",
            *(["On the command line:", "", "```bash", command, "```", ""] if command else []),
            "The first load downloads the bundle into the Hugging Face cache; later loads, and loads with "
            "`HF_HUB_OFFLINE=1`, read it from there. Pin a version with `hf://REPO@REVISION` (a branch, tag or "
            "commit hash).".replace("REPO", repo), ""]


def _example(reading: dict) -> str:
    """A sentence in the translator's source language, for the card's example."""
    source = str(reading.get("src_lang", ""))
    return {"de": "Ein Hund läuft im Park.", "en": "A dog runs in the park.", "fr": "Un chien court dans le parc.",
            "es": "Un perro corre en el parque."}.get(source, f"A sentence in {source or 'the source language'}.")


def model_card(bundle_dir: str | Path, repo_id: str | None = None) -> str:
    """The Hugging Face model card (README.md) of a bundle: YAML front matter, task, scores, sacreBLEU signatures,
    training, data and network settings, and how to load it from `repo_id` (default: a USER/NAME placeholder)."""
    from seq2text.registry import TASKS, ModelCard

    directory = Path(bundle_dir)
    config, metrics = read_bundle_config(directory)
    task, net = str(config.get("task")), config.get("net") or {}
    card = TASKS[task].card if task in TASKS else ModelCard(task.replace("_", " ") + " model", None,
                                                            ('model = seq2text.load("hf://{repo}")',))
    repo = repo_id or "USER/NAME"
    rnn = str(net["rnn_type"]).upper() if net.get("rnn_type") else "recurrent"
    article = "An" if rnn.startswith(("LSTM", "A", "E", "I", "O", "U")) else "A"  # an LSTM, a GRU
    languages = _languages(config)
    pair = f" ({' → '.join(languages)})" if len(languages) == 2 else ""  # source → target
    lines = [*_front_matter(config, metrics, card), f"# {repo}", "",
             f"{article} {rnn} {card.label}{pair} (task: `{task}`) trained with seq2text (recurrent NLP on PyTorch "
             "Lightning). "
             "The bundle holds config.json (settings), model.safetensors (weights, no pickled code), metrics.json "
             f"(scores){', tokenizer.model (SentencePiece)' if (directory / 'tokenizer.model').is_file() else ''}.",
             "", *_score_section(metrics), *_training_section(metrics), *_table("Data", config.get("data") or {}),
             *_table("Network", net), *_usage(card, config, repo)]
    return "\n".join(lines)


def hub_folder(bundle_dir: str | Path, target_dir: str | Path, repo_id: str | None = None) -> Path:
    """Writes the bundle files and README.md (the model card) into the new or empty `target_dir`; returns it."""
    source, target = Path(bundle_dir), Path(target_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BundleError(f"{target} exists and is not an empty directory; give a new folder for the Hub layout")
    card = model_card(source, repo_id)
    target.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    (target / "README.md").write_text(card + "\n", encoding="utf-8")
    return target


def push_to_hub(bundle_dir: str | Path, repo_id: str, token: str | None = None, private: bool = False,
                revision: str | None = None, commit_message: str = "Upload seq2text model bundle",
                api: object | None = None) -> str:
    """Uploads a bundle (checked first), with its model card, to the Hub model repo `repo_id` (created when
    missing; `private` applies only then) and returns the commit's URL. `token`: default HF_TOKEN or the one of
    `hf auth login`; `revision`: the branch (created from main when missing); `api`: as `HfApi(token=token)`."""
    check_repo_id(repo_id)
    read_bundle(bundle_dir)
    if api is None:
        api = _huggingface_hub().HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="seq2text-hub-") as tmp:
        folder = hub_folder(bundle_dir, Path(tmp) / "upload", repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision is not None and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
            info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                     commit_message=commit_message, revision=revision)
        except Exception as error:  # noqa: BLE001 - the Hub's errors (and its HTTP client's) become one message
            if not _from_hub(error):
                raise
            raise BundleError(f"could not push {bundle_dir} to the Hub repo {repo_id} ({type(error).__name__}: "
                              f"{error}); check the network (and that HF_HUB_OFFLINE is unset) and the write token "
                              "(`hf auth login`, or HF_TOKEN)") from error
    return str(getattr(info, "commit_url", None) or info)
