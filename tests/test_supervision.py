"""The server's own faults: model processes and threads that die are started again and their requests decoded
again, probes, deadlines (504), clients that go away (their sentences leave the batch), and /metrics parsed by
prometheus_client's own parser. Every wait is for an event (a counter, a pid, a gate), never a fixed delay."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import seq2text
from seq2text.errors import ConfigError
from seq2text.serving.batching import Backoff
from seq2text.serving.server import ServeConfig, create_app
from tests.test_serve import SENTENCES, _concurrent, running

TEXTS = [text for text in SENTENCES if text] * 3


def _until(check: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    """Waits for `check()` (an event, polled); `limit` only stops a hung test."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _workers(url: str) -> dict:
    return httpx.get(f"{url}/info").json()["workers"]


def _translations(responses: list[httpx.Response]) -> list[str]:
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    return [r.json()["translations"][0] for r in responses]


# ------------------------------------------------------------------------------------------ model processes
def test_a_killed_model_process_is_started_again_and_its_requests_are_decoded_by_another(
        translator_bundle: Path) -> None:
    translator = seq2text.load(translator_bundle)
    app = create_app(translator, ServeConfig(workers=2, threads=1, max_wait=0.05), [str(translator_bundle)])
    with running(app) as url:
        before = _workers(url)
        victim = before["pids"][0]
        os.kill(victim, signal.SIGSTOP)  # it takes requests but answers none: they are in flight there when killed
        sent = _send_in_background(url, TEXTS)
        _until(lambda: _workers(url)["in_flight"][0] > 0, "sentences in flight in the stopped process")
        os.kill(victim, signal.SIGKILL)
        responses = sent.result(timeout=120)
        assert _translations(responses) == translator.translate(TEXTS)  # none lost, none failed
        _until(lambda: _workers(url)["alive"] == [True, True], "the killed process started again")
        after = _workers(url)
        assert after["restarts"] == [1, 0] and after["pids"][0] != victim and after["pids"][1] == before["pids"][1]
        assert len(after["restart_seconds"][0]) == 1 and after["restart_seconds"][1] == []
        assert httpx.get(f"{url}/health/ready").status_code == 200
        again = asyncio.run(_concurrent(f"{url}/translate", [{"texts": [text]} for text in TEXTS]))
        assert _translations(again) == translator.translate(TEXTS)
        assert _workers(url)["texts"][0] > after["texts"][0]  # the new process takes work


def test_requests_wait_for_a_restart_while_no_model_process_is_alive(translator_bundle: Path) -> None:
    translator = seq2text.load(translator_bundle)
    app = create_app(translator, ServeConfig(workers=2, threads=1), [str(translator_bundle)])
    with running(app) as url:
        pids = _workers(url)["pids"]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        seen = {}

        def not_ready() -> bool:
            response = httpx.get(f"{url}/health/ready")
            seen.update(response.json())
            return response.status_code == 503

        _until(not_ready, "not ready while none is alive")
        assert "no model can take work" in seen["error"]
        assert httpx.get(f"{url}/health/live").status_code == 200  # the server itself answers
        responses = asyncio.run(_concurrent(f"{url}/translate", [{"texts": [text]} for text in TEXTS[:4]]))
        assert _translations(responses) == translator.translate(TEXTS[:4])  # answered once one came back
        _until(lambda: _workers(url)["alive"] == [True, True], "both started again")
        assert _workers(url)["restarts"] == [1, 1] and httpx.get(f"{url}/health/ready").status_code == 200


def _send_in_background(url: str, texts: list[str]) -> asyncio.Future:
    """Sends one request per text from a thread of its own → a concurrent.futures.Future of the responses."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    future = pool.submit(lambda: asyncio.run(_concurrent(f"{url}/translate", [{"texts": [t]} for t in texts])))
    pool.shutdown(wait=False)
    return future


# ------------------------------------------------------------------------------------------ the model thread
class _Gated:
    """A translator whose searches wait at every step for `gate` and raise `crash` (a BaseException: it kills the
    model thread) at their first step while `crashes` lasts; everything else is the translator's."""

    def __init__(self, translator: object, gate: threading.Event | None = None, crashes: int = 0) -> None:
        self.translator, self.gate, self.crashes, self.removed, self.added = translator, gate, crashes, 0, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.translator, name)

    def continuous_search(self) -> object:
        search, outer = self.translator.continuous_search(), self

        class Search:
            def __len__(self) -> int:
                return len(search)

            def add(self, src: object, src_lengths: object, keys: list) -> None:
                outer.added += len(keys)  # sentences into the search (one call may bring some of a request's)
                search.add(src, src_lengths, keys)

            def remove(self, gone: Callable) -> int:
                outer.removed += (count := search.remove(gone))
                return count

            def step(self) -> list:
                if outer.gate is not None:
                    outer.gate.wait()
                if outer.crashes:
                    outer.crashes -= 1
                    raise _Crash("the model thread dies")
                return search.step()

        return Search()


class _Crash(BaseException):
    pass


def test_the_model_thread_of_a_one_process_server_is_started_again(translator_bundle: Path) -> None:
    translator = seq2text.load(translator_bundle)
    app = create_app(_Gated(translator, crashes=1), ServeConfig(max_wait=0.05))
    with running(app) as url:
        responses = asyncio.run(_concurrent(f"{url}/translate", [{"texts": [text]} for text in TEXTS]))
        workers = _workers(url)
    assert _translations(responses) == translator.translate(TEXTS)
    assert workers["restarts"] == [1] and workers["alive"] == [True]


def test_backoff_is_counted_not_timed() -> None:
    backoff = Backoff(cap=4.0)
    assert [backoff.next() for _ in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.0


# ------------------------------------------------------------------------------------------ deadlines
def test_a_request_past_the_timeout_gets_a_504_and_leaves_the_search(translator_bundle: Path) -> None:
    gate = threading.Event()
    gated = _Gated(seq2text.load(translator_bundle), gate)
    with TestClient(create_app(gated, ServeConfig(timeout=0.2))) as client:
        response = client.post("/translate", json={"texts": [SENTENCES[0], SENTENCES[1]]})
        assert response.status_code == 504 and "--timeout" in response.json()["error"]
        gate.set()
        _until(lambda: client.get("/info").json()["batching"]["cancelled"] == 1, "the request dropped")
        assert gated.added >= 1 and gated.removed == gated.added  # what it had in the running search taken out
        assert client.post("/translate", json={"texts": ["der hund"]}).status_code == 200
    with pytest.raises(ConfigError, match="--timeout"):
        ServeConfig(timeout=0)


def test_a_client_that_disconnects_has_its_sentences_removed(translator_bundle: Path) -> None:
    gate = threading.Event()
    gated = _Gated(seq2text.load(translator_bundle), gate)
    with running(create_app(gated, ServeConfig(timeout=None))) as url:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
            httpx.post(f"{url}/translate", json={"texts": SENTENCES[:2]}, timeout=0.5)
        gate.set()
        _until(lambda: httpx.get(f"{url}/info").json()["batching"]["cancelled"] == 1, "the request dropped")
        assert gated.added >= 1 and gated.removed == gated.added  # on a busy machine the second may not have entered


# ------------------------------------------------------------------------------------------ /metrics
def _metrics(client: TestClient) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_are_prometheus_text_and_move_with_requests(translator_bundle: Path) -> None:
    ok = ("seq2text_requests_total", (("route", "/translate"), ("status", "200")))
    bad = ("seq2text_requests_total", (("route", "/translate"), ("status", "422")))
    with TestClient(create_app(seq2text.load(translator_bundle), ServeConfig())) as client:
        before = _metrics(client)
        for text in TEXTS[:3]:
            client.post("/translate", json={"texts": [text]})
        client.post("/translate", json={"texts": []})
        client.get("/nowhere")
        after = _metrics(client)
    assert before.get(ok, 0) == 0 and after[ok] == 3 and after[bad] == 1
    assert after[("seq2text_requests_total", (("route", "other"), ("status", "404")))] == 1
    assert after[("seq2text_request_duration_seconds_count", (("route", "/translate"),))] == 4
    steps = after[("seq2text_sentences_per_step_count", ())]
    assert steps > before[("seq2text_sentences_per_step_count", ())] and \
        after[("seq2text_sentences_per_step_bucket", (("le", "+Inf"),))] == steps
    assert after[("seq2text_texts_total", ())] == 3 and after[("seq2text_restarts_total", ())] == 0
    assert after[("seq2text_ready", ())] == 1 and after[("seq2text_queue_depth", ())] == 0
    assert after[("seq2text_sentences_in_flight", (("process", "0"),))] == 0


def test_metrics_count_each_model_process(translator_bundle: Path) -> None:
    app = create_app(seq2text.load(translator_bundle), ServeConfig(workers=2, threads=1), [str(translator_bundle)])
    with TestClient(app) as client:
        for text in TEXTS[:4]:
            assert client.post("/translate", json={"texts": [text]}).status_code == 200
        metrics = _metrics(client)
    assert {metrics[("seq2text_sentences_in_flight", (("process", str(n)),))] for n in (0, 1)} == {0}
    assert metrics[("seq2text_texts_total", ())] == 4 and metrics[("seq2text_sentences_per_step_count", ())] > 0
