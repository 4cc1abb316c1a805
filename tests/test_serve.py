"""`seq2text serve`: endpoints per task, dynamic batching across concurrent requests, JSON 4xx for bad
requests, limits, and a graceful shutdown that finishes the requests in flight."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

import seq2text
from seq2text.cli import main
from seq2text.errors import ConfigError
from seq2text.hardware import usable_cores
from seq2text.serving.batching import ProcessBatcher
from seq2text.serving.server import ServeConfig, create_app
from tests.conftest import REPO

SENTENCES = ["der hund läuft im park", "eine katze schläft", "", "der mann sieht die rote katze im haus",
             "ein kleiner hund", "die frau läuft auf der straße"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app: object) -> Iterator[str]:
    """A real uvicorn server for `app` in a thread; yields its URL. Its socket listens before the thread starts, so
    a request sent at once waits in the backlog until the server accepts it (nothing to poll for)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


async def _concurrent(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.post(url, json=body) for body in bodies))


# ------------------------------------------------------------------------------------------ translation
def test_translate_endpoint_gives_the_in_process_translations(translator_bundle: Path) -> None:
    translator = seq2text.load(translator_bundle)
    with TestClient(create_app(translator, ServeConfig(), [str(translator_bundle)])) as client:
        assert client.get("/health").json() == {"status": "ok", "task": "translation"}
        response = client.post("/translate", json={"texts": SENTENCES})
        assert response.status_code == 200
        assert response.json() == {"translations": translator.translate(SENTENCES)}
        mixed = client.post("/translate", json={"texts": ["", SENTENCES[0], "  "]}).json()["translations"]
        assert mixed == ["", translator.translate(SENTENCES[:1])[0], ""]
        assert client.post("/translate", json={"texts": [" "]}).json() == {"translations": [""]}
        info = client.get("/info").json()
    assert info["task"] == "translation" and info["routes"] == ["/health", "/info", "/translate"]
    assert info["languages"] == {"source": "de", "target": "en"}
    assert info["sacrebleu_signature"] == translator.metrics["test/bleu_signature"]
    assert info["metrics"]["test/bleu"] == translator.metrics["test/bleu"]
    assert info["batching"]["requests"] == 3 and info["batching"]["mode"] == "continuous"


@pytest.mark.parametrize(("body", "status", "says"), [
    (b'{"texts": ["a"', 422, "JSON"),
    (b'{"text": "der hund"}', 422, "texts"),
    (b'{"texts": "der hund"}', 422, "texts"),
    (b'{"texts": [3]}', 422, "texts.0"),
    (b'{"texts": []}', 422, "texts"),
    (json.dumps({"texts": ["x" * 51]}).encode(), 413, "--max-chars"),
    (json.dumps({"texts": ["der hund"] * 5}).encode(), 413, "--max-lines"),
    (b"\xff\xfe garbage", 422, ""),
])
def test_bad_requests_get_a_json_4xx_and_the_server_goes_on(translator_bundle: Path, body: bytes, status: int,
                                                            says: str) -> None:
    translator = seq2text.load(translator_bundle)
    with TestClient(create_app(translator, ServeConfig(max_chars=50, max_lines=4))) as client:
        response = client.post("/translate", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status
        assert says in response.json()["error"]
        assert client.post("/translate", json={"texts": ["der hund"]}).json() == {
            "translations": translator.translate(["der hund"])}
        assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json()


@pytest.mark.parametrize("batching", ["continuous", "dynamic"])
def test_concurrent_requests_are_decoded_in_shared_batches(translator_bundle: Path, batching: str) -> None:
    translator = seq2text.load(translator_bundle)
    texts = [SENTENCES[i % len(SENTENCES)] + f" {i % 3}" for i in range(16)]
    app = create_app(translator, ServeConfig(max_batch_size=8, max_wait=0.5, batching=batching))
    with running(app) as url:
        responses = asyncio.run(_concurrent(f"{url}/translate", [{"texts": [t]} for t in texts]))
        batching = httpx.get(f"{url}/info").json()["batching"]
    assert [r.status_code for r in responses] == [200] * 16
    assert [r.json()["translations"][0] for r in responses] == translator.translate(texts)
    assert batching["requests"] == 16 and batching["largest_batch"] <= 8 and batching["failed_batches"] == 0
    if batching["mode"] == "dynamic":
        assert batching["batches"] <= 4, batching  # one per request would be 16
    else:  # sentences decoded side by side: 8 at the start, each freed place taken by a waiting one
        assert batching["largest_batch"] == 8 and batching["mean_sentences_per_step"] > 4, batching


def test_a_request_larger_than_a_batch_runs_alone(translator_bundle: Path) -> None:
    translator = seq2text.load(translator_bundle)
    with TestClient(create_app(translator, ServeConfig(max_batch_size=2, max_wait=0.0))) as client:
        response = client.post("/translate", json={"texts": SENTENCES})
        assert response.json()["translations"] == translator.translate(SENTENCES)
        decoded = [text for text in SENTENCES if text.strip()]  # an empty text is answered "" without the model
        assert client.get("/info").json()["batching"]["largest_batch"] == len(decoded) < len(SENTENCES)


@pytest.mark.parametrize("workers", [1, 2])
def test_shutdown_finishes_the_requests_in_flight(translator_bundle: Path, tmp_path: Path, workers: int) -> None:
    port = _free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "seq2text.cli", "serve", "--model", str(translator_bundle), "--port", str(port),
               "--max-wait-ms", "2000", "--max-batch-size", "64", "--workers", str(workers)]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        ready, copier = _serving(server, log)
        assert ready.wait(timeout=120) and server.poll() is None, log.read_text()
        # the command line set OpenMP's passive wait before torch loaded (unless the caller chose a policy)
        info = httpx.get(f"{url}/info").json()
        assert info["threads"]["openmp_wait_policy"] == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
        cores = usable_cores()
        # one worker: OMP_NUM_THREADS is kept; several: the cores are divided among them
        assert info["threads"]["torch"] == (1 if workers == 1 else max(1, cores // workers))
        pids = info["workers"]["pids"]
        assert len(set(pids)) == workers and (server.pid in pids) == (workers == 1)  # several: model processes

        async def requests_then_sigterm() -> list[httpx.Response]:
            sent = asyncio.ensure_future(_concurrent(f"{url}/translate", [{"texts": [s]} for s in SENTENCES]))
            async with httpx.AsyncClient() as client:  # until the server holds every request (an event, not a delay)
                while not sent.done():
                    assert server.poll() is None, log.read_text()
                    if (await client.get(f"{url}/info")).json()["batching"].get("requests", 0) >= len(SENTENCES):
                        break
                    await asyncio.sleep(0.02)
            server.send_signal(signal.SIGTERM)
            return await sent

        responses = asyncio.run(requests_then_sigterm())
        server.wait(timeout=60)
        copier.join(timeout=60)  # its stderr's last lines in the log
    finally:
        if server.poll() is None:
            server.kill()
    assert [r.status_code for r in responses] == [200] * len(SENTENCES)
    assert [r.json()["translations"][0] for r in responses] == seq2text.load(translator_bundle).translate(SENTENCES)
    assert "Finished server process" in log.read_text()
    assert [line for line in log.read_text().splitlines() if "Warning" in line] == []  # no dependency warnings
    assert not any(_alive(pid) for pid in pids if pid != server.pid)  # the model processes stopped with it
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _serving(server: subprocess.Popen, log: Path) -> tuple[threading.Event, threading.Thread]:
    """Copies the server's stderr to `log` line by line, in a thread that runs to its end (returned, to join before
    reading the whole log); the event is set when uvicorn says it is serving, or when stderr ends first (the server
    is gone: the caller's check of it fails). An event to wait on, not a poll."""
    ready = threading.Event()

    def copy() -> None:
        with log.open("w") as out:
            for line in server.stderr:
                out.write(line)
                out.flush()
                if "Uvicorn running on" in line:
                    ready.set()
        ready.set()

    copier = threading.Thread(target=copy, daemon=True)
    copier.start()
    return ready, copier


# ------------------------------------------------------------------------------------------ other tasks
def test_classify_endpoint(classifier_bundle: Path) -> None:
    classifier = seq2text.load(classifier_bundle)
    texts = ["a great fun movie", "an awful dull film", ""]
    with TestClient(create_app(classifier, ServeConfig())) as client:
        body = client.post("/classify", json={"texts": texts}).json()
        assert client.get("/info").json()["routes"] == ["/health", "/info", "/classify"]
    assert body["labels"] == classifier.predict(texts)
    for served, direct in zip(body["probabilities"], classifier.predict_proba(texts), strict=True):
        assert served == pytest.approx(direct)


def test_language_model_endpoints(lm_bundle: Path) -> None:
    lm = seq2text.load(lm_bundle)
    with TestClient(create_app(lm, ServeConfig())) as client:
        scores = client.post("/score", json={"texts": ["the cat sat", "dog the"]}).json()["log_probs"]
        sampled = client.post("/generate", json={"prompt": "the", "max_tokens": 5, "seed": 3}).json()["text"]
        refused = client.post("/generate", json={"prompt": "the", "temperature": 0})
    assert scores == pytest.approx(lm.score(["the cat sat", "dog the"]))
    assert sampled == lm.generate("the", 5, seed=3)
    assert refused.status_code == 422 and "temperature" in refused.json()["error"]


def test_serve_options_are_checked_before_loading(capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "--model", "nowhere", "--max-batch-size", "0"]) == 1
    assert "--max-batch-size" in capsys.readouterr().err
    assert main(["serve", "--model", "nowhere", "--workers", "0"]) == 1
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--port"):
        ServeConfig(port=70000)


def test_the_serve_command_sets_passive_openmp_before_torch_loads_without_a_relaunch() -> None:
    """`seq2text serve` sets OMP_WAIT_POLICY=PASSIVE at its entry, before torch (and its OpenMP) load, in the same
    process; a policy the user chose is kept."""
    import subprocess
    import sys

    code = ("import os, sys; sys.argv = ['seq2text', 'serve', '--model', 'nowhere']; from seq2text.cli import main; "
            "assert 'torch' not in sys.modules; pid = os.getpid(); code = main(); "
            "print(os.environ.get('OMP_WAIT_POLICY'), code, pid == os.getpid())")
    for policy, expected in ((None, "PASSIVE 1 True"), ("ACTIVE", "ACTIVE 1 True")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
        assert out.stdout.strip().splitlines()[-1] == expected, out.stderr


def test_a_model_process_that_cannot_load_stops_the_start(tmp_path: Path) -> None:
    batcher = ProcessBatcher([str(tmp_path / "gone")], max_batch_size=8, max_wait=0.01, workers=1, threads=1)

    async def start() -> None:
        batcher.start()

    with pytest.raises(RuntimeError, match="could not start.*gone"):
        asyncio.run(start())


def test_workers_serve_translation_with_continuous_batching_only(classifier_bundle: Path,
                                                                 translator_bundle: Path) -> None:
    with pytest.raises(ConfigError, match="--workers 2"):
        create_app(seq2text.load(classifier_bundle), ServeConfig(workers=2), [str(classifier_bundle)])
    with pytest.raises(ConfigError, match="--workers 2"):
        create_app(seq2text.load(translator_bundle), ServeConfig(workers=2, batching="dynamic"),
                   [str(translator_bundle)])
