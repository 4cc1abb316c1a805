"""Bundles on the Hugging Face Hub (issue 16), with the Hub unreachable: `hf://` addresses load from a local
cache laid out as huggingface_hub lays out a downloaded repo, model cards, and `push_to_hub` through a fake API
that commits into such a cache (a round trip through seq2text.bundles.hub)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seq2text.bundles.hub import hub_folder, model_card, parse_address, push_to_hub, resolve
from seq2text.cli import main
from seq2text.errors import BundleError
from tests.conftest import REPO

SOURCES = ["Der hund läuft im park.", "Ein mann sieht die katze.", ""]
BUNDLE = ["config.json", "metrics.json", "model.safetensors", "tokenizer.model"]


def cache_repo(cache: Path, repo_id: str, folder: Path, commit: str, ref: str = "main") -> Path:
    """Lays `folder` out as huggingface_hub's cache holds a downloaded model repo (file_download.py):
    <cache>/models--user--repo/{blobs/<hash>, snapshots/<commit>/<file> -> ../../blobs/<hash>, refs/<ref>}."""
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (storage / "blobs").mkdir(exist_ok=True)
    for file in sorted(folder.iterdir()):
        blob = hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, storage / "blobs" / blob)
        (snapshot / file.name).symlink_to(Path("..") / ".." / "blobs" / blob)
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it
    return snapshot


class FakeHub:
    """A stand-in for `huggingface_hub.HfApi`: records the calls; an upload becomes a commit in `cache`."""

    def __init__(self, cache: Path) -> None:
        self.cache, self.calls = cache, []

    def create_repo(self, repo_id: str, *, private: bool = False, exist_ok: bool = False,
                    repo_type: str | None = None) -> str:
        self.calls.append(("create_repo", repo_id, private, exist_ok, repo_type))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, *, branch: str, exist_ok: bool = False, repo_type: str | None = None) -> None:
        self.calls.append(("create_branch", repo_id, branch, exist_ok, repo_type))

    def upload_folder(self, *, folder_path: str, repo_id: str, repo_type: str | None = None,
                      commit_message: str | None = None, revision: str | None = None) -> str:
        folder = Path(folder_path)
        files = sorted(p.name for p in folder.iterdir())
        content = b"".join((folder / name).read_bytes() for name in files)
        commit = hashlib.sha1(content + f"{commit_message}@{revision}".encode()).hexdigest()
        cache_repo(self.cache, repo_id, folder, commit, revision or "main")
        self.calls.append(("upload_folder", repo_id, files, repo_type, commit_message, revision))
        return f"https://huggingface.co/{repo_id}/commit/{commit}"


def offline_env(tmp_path: Path, cache: Path) -> dict[str, str]:
    """The environment of a child process that may not reach the Hub and reads the cache `cache`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


# a child process, so that huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE when it is first imported
LOAD = """
import json, sys, time
import seq2text
from seq2text.errors import BundleError
assert "huggingface_hub" not in sys.modules, "import seq2text loaded huggingface_hub"
found = {}
for address in sys.argv[1:]:
    start = time.perf_counter()
    try:
        best = seq2text.load(address).translate_nbest(SOURCES, n_best=2, beam_size=2)
        found[address] = [[h.text, round(h.score, 5)] for hyps in best for h in hyps]
    except BundleError as error:
        found[address] = {"error": str(error), "seconds": time.perf_counter() - start}
print("FOUND", json.dumps(found))
""".replace("SOURCES", repr(SOURCES))


def load_offline(tmp_path: Path, cache: Path, *addresses: str) -> dict:
    """What `seq2text.load(address)` gives for each address in a child process with the Hub offline."""
    result = subprocess.run([sys.executable, "-c", LOAD, *addresses], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env=offline_env(tmp_path, cache))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.split("FOUND ", 1)[1])


# ------------------------------------------------------------------------------------------ hf:// addresses
def test_addresses_are_parsed_and_malformed_ones_refused() -> None:
    assert parse_address("hf://alice/toy-mt") == ("alice/toy-mt", None)
    assert parse_address("hf://alice/toy-mt@v1.0") == ("alice/toy-mt", "v1.0")
    assert resolve("some/local/bundle") == Path("some/local/bundle")
    for bad in ["hf://", "hf://onlyname", "hf://alice/toy mt", "hf://al ice/x", "hf://a/b/c", "hf://a--b/x"]:
        with pytest.raises(BundleError, match="malformed Hub address.*user/name"):
            resolve(bad)
    with pytest.raises(BundleError, match="no revision after '@'"):
        resolve("hf://alice/toy-mt@")
    with pytest.raises(BundleError, match="as a string"):
        resolve(Path("hf://alice/toy-mt"))


def test_load_from_the_hub_cache_offline(translator_bundle: Path, tmp_path: Path) -> None:
    cache, commit = tmp_path / "hub_cache", "0123456789abcdef0123456789abcdef01234567"
    cache_repo(cache, "alice/toy-mt", hub_folder(translator_bundle, tmp_path / "upload", "alice/toy-mt"), commit)
    found = load_offline(tmp_path, cache, str(translator_bundle), "hf://alice/toy-mt", f"hf://alice/toy-mt@{commit}",
                         "hf://alice/not-cached", "hf://alice/toy-mt@no-such-branch")
    local = found[str(translator_bundle)]
    assert len(local) == 5 and found["hf://alice/toy-mt"] == local and found[f"hf://alice/toy-mt@{commit}"] == local
    for address, revision in (("hf://alice/not-cached", "main"),
                              ("hf://alice/toy-mt@no-such-branch", "no-such-branch")):
        error = found[address]
        assert "HF_HUB_OFFLINE=1" in error["error"] and f"revision {revision}" in error["error"]
        assert f"not in the local Hugging Face cache {cache}" in error["error"], error["error"]
        assert "local bundle directory" in error["error"]  # offline: answered from the cache, no network


def test_cli_model_takes_a_hub_address(translator_bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub_cache"
    cache_repo(cache, "alice/toy-mt", hub_folder(translator_bundle, tmp_path / "upload"), "ab" * 20)
    outputs = []
    for model in (str(translator_bundle), "hf://alice/toy-mt"):
        result = subprocess.run([sys.executable, "-m", "seq2text.cli", "translate", "--model", model, "--beam", "2"],
                                input="\n".join(SOURCES) + "\n", cwd=REPO, capture_output=True, text=True,
                                timeout=300, env=offline_env(tmp_path, cache))
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout)
    assert outputs[0].count("\n") == len(SOURCES) and outputs[1] == outputs[0]


# ------------------------------------------------------------------------------------------ model card
def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_model_card_of_a_translator(translator_bundle: Path) -> None:
    card = model_card(translator_bundle, "alice/toy-mt")
    config = json.loads((translator_bundle / "config.json").read_text())
    metrics = json.loads((translator_bundle / "metrics.json").read_text())
    meta = front_matter(card)
    assert meta["library_name"] == "seq2text" and meta["pipeline_tag"] == "translation"
    assert meta["tags"] == ["seq2text", config["net"]["rnn_type"], "translation"]
    assert meta["language"] == [config["data"]["src_lang"], config["data"]["trg_lang"]] == ["de", "en"]
    assert {"bleu", "chrf", "ter", "perplexity"} <= set(meta["metrics"])
    assert "task: `translation`" in card
    for name in ("test/bleu", "test/chrf", "test/ter", "val/ppl"):
        assert f"| {name} | {metrics[name]:.4g} |" in card
    assert metrics["test/bleu_signature"].startswith("nrefs:1") and f"`{metrics['test/bleu_signature']}`" in card
    assert f"| epochs | {metrics['epochs']} |" in card and f"| precision | {metrics['precision']} |" in card
    assert f"| hidden_size | {config['net']['hidden_size']} |" in card and "| src_lang | de |" in card
    assert "pip install seq2text" in card and 'seq2text.load("hf://alice/toy-mt")' in card and ".translate(" in card


def test_model_card_without_signatures_or_languages(translator_bundle: Path, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(translator_bundle, tmp_path / "bundle"))
    config = json.loads((bundle / "config.json").read_text())
    config["task"], config["reading"], config["data"] = "language_model", {}, {"dataset": "ptb"}
    (bundle / "config.json").write_text(json.dumps(config))
    (bundle / "metrics.json").write_text(json.dumps({"val/ppl": 123.456, "val/tokens": 9.0, "epochs": 3}))
    card = model_card(bundle)
    meta = front_matter(card)
    assert "language" not in meta and meta["metrics"] == ["perplexity"] and meta["pipeline_tag"] == "text-generation"
    assert "| val/ppl | 123.5 |" in card and "val/tokens" not in card and "sacreBLEU" not in card
    assert 'seq2text.load("hf://USER/NAME")' in card and ".generate(" in card


def test_hub_folder_holds_the_bundle_and_the_card(translator_bundle: Path, tmp_path: Path) -> None:
    folder = hub_folder(translator_bundle, tmp_path / "upload", "alice/toy-mt")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*BUNDLE, "README.md"])
    for name in BUNDLE:
        assert (folder / name).read_bytes() == (translator_bundle / name).read_bytes()
    assert (folder / "README.md").read_text() == model_card(translator_bundle, "alice/toy-mt") + "\n"
    with pytest.raises(BundleError, match="not an empty directory"):
        hub_folder(translator_bundle, folder)


# ------------------------------------------------------------------------------------------ push
def test_push_then_load_gives_the_same_predictions(translator_bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub_cache"
    api = FakeHub(cache)
    url = push_to_hub(translator_bundle, "alice/toy-mt", private=True, api=api)
    assert url.startswith("https://huggingface.co/alice/toy-mt/commit/")
    assert api.calls[0] == ("create_repo", "alice/toy-mt", True, True, "model")
    assert api.calls[1][:4] == ("upload_folder", "alice/toy-mt", sorted([*BUNDLE, "README.md"]), "model")
    assert api.calls[1][5] is None and len(api.calls) == 2
    push_to_hub(translator_bundle, "alice/toy-mt", revision="v2", commit_message="second", api=api)
    assert api.calls[3] == ("create_branch", "alice/toy-mt", "v2", True, "model")
    assert api.calls[4][4:] == ("second", "v2")
    found = load_offline(tmp_path, cache, str(translator_bundle), "hf://alice/toy-mt", "hf://alice/toy-mt@v2")
    assert found["hf://alice/toy-mt"] == found["hf://alice/toy-mt@v2"] == found[str(translator_bundle)]
    card = next((cache / "models--alice--toy-mt" / "snapshots").iterdir()) / "README.md"
    assert "library_name: seq2text" in card.read_text() and "hf://alice/toy-mt" in card.read_text()


def test_push_refuses_a_broken_bundle_before_any_call(translator_bundle: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    broken = Path(shutil.copytree(translator_bundle, tmp_path / "broken"))
    (broken / "model.safetensors").unlink()
    api = FakeHub(tmp_path / "cache")
    with pytest.raises(BundleError, match="missing model.safetensors"):
        push_to_hub(broken, "alice/toy-mt", api=api)
    with pytest.raises(BundleError, match="not a Hugging Face repo id"):
        push_to_hub(translator_bundle, "alice", api=api)
    assert api.calls == [] and not (tmp_path / "cache").exists()
    assert main(["push", "--model", str(broken), "--repo", "alice/toy-mt"]) == 1
    assert "missing model.safetensors" in capsys.readouterr().err


def test_push_offline_says_what_to_fix(translator_bundle: Path, tmp_path: Path) -> None:
    """The real HfApi with HF_HUB_OFFLINE=1: huggingface_hub's error becomes a BundleError (exit 1, no traceback)."""
    result = subprocess.run([sys.executable, "-m", "seq2text.cli", "push", "--model", str(translator_bundle),
                             "--repo", "alice/toy-mt"], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env=offline_env(tmp_path, tmp_path / "hub_cache"))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "could not push" in result.stderr and "HF_HUB_OFFLINE" in result.stderr
