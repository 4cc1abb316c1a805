"""The playground page of `seq2text serve` (GET /): a static page with nothing from elsewhere, and, in a real
headless Chromium (Debian's `chromium`, driven by Playwright), showing exactly what the JSON endpoints return."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import seq2text
from seq2text.serving.server import ServeConfig, create_app
from tests.test_serve import running

GERMAN = "Der hund läuft im park."


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium: the system's (no download); missing, it skips here and fails in CI (`CI` set)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        message = ("the playground's browser test needs Playwright for Python (pip install -e '.[dev]') and "
                   "Debian's Chromium (apt-get install -y chromium)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@contextmanager
def opened(browser: object, url: str) -> Iterator[object]:
    """A page of the playground at `url`, once it has read /info; a JavaScript error fails the test."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(180_000)  # a guard against a hang only: `make test` shares two busy cores
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/")
    page.wait_for_selector("#status[data-state=ready]")
    try:
        yield page
        assert not errors, errors
    finally:
        page.close()


def _run(page: object, text: str) -> None:
    page.fill("#input", text)
    page.click("#run")
    page.wait_for_selector("#status[data-state=done], #status[data-state=error]")


def _drawn_pixels(page: object, selector: str) -> int:
    """Pixels of the canvas that are neither white nor transparent."""
    return page.evaluate("""(selector) => {
        const canvas = document.querySelector(selector);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] > 0 && (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250)) drawn++;
        }
        return drawn;
    }""", selector)


# ------------------------------------------------------------------------------------------ without a browser
def test_the_page_is_served_and_loads_nothing_from_elsewhere(translator_bundle: Path) -> None:
    with TestClient(create_app(seq2text.load(translator_bundle), ServeConfig())) as client:
        response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<canvas" in page and 'fetch(' in page and "/info" in page
    assert not re.search(r"https?://|//[\w.-]+\.\w{2,}/", page), "the page must not load anything from elsewhere"
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page), "the page must be one file"


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"texts": ["der hund"]}, 422, "text"),
    ({"text": "der hund", "n_best": 0}, 422, "n_best"),
    ({"text": "der hund", "n_best": 3, "beam_size": 2}, 422, "beam_size"),
    ({"text": "der hund", "colour": "red"}, 422, "colour"),
    ({"text": "x" * 51}, 413, "--max-chars"),
])
def test_translation_details_check_their_input(translator_bundle: Path, body: dict, status: int, says: str) -> None:
    translator = seq2text.load(translator_bundle)
    with TestClient(create_app(translator, ServeConfig(max_chars=50))) as client:
        response = client.post("/translate/details", json=body)
        assert response.status_code == status and says in response.json()["error"]
        details = client.post("/translate/details", json={"text": GERMAN, "n_best": 2}).json()
        empty = client.post("/translate/details", json={"text": ""}).json()
    best = translator.translate_nbest([GERMAN], 2, max(2, translator.search.beam_size), return_attention=True)[0]
    assert [h["text"] for h in details["hypotheses"]] == [h.text for h in best]
    assert details["source_tokens"] == best[0].source_tokens
    rows, columns = len(best[0].tokens) + 1, len(best[0].source_tokens)
    assert [len(row) for row in details["attention"]] == [columns] * rows
    assert empty["hypotheses"][0]["text"] == "" and empty["attention"] == []


def test_only_a_translator_gets_details(classifier_bundle: Path) -> None:
    with TestClient(create_app(seq2text.load(classifier_bundle), ServeConfig())) as client:
        assert client.get("/").status_code == 200
        assert client.post("/translate/details", json={"text": "a"}).status_code in (404, 405)


# ------------------------------------------------------------------------------------------ in Chromium
def test_the_page_translates_as_the_endpoint_does(browser: object, translator_bundle: Path, tmp_path: Path) -> None:
    app = create_app(seq2text.load(translator_bundle), ServeConfig(), [str(translator_bundle)])
    with running(app) as url, opened(browser, url) as page:
        assert page.inner_text("#run") == "Translate"
        _run(page, GERMAN)
        shown = page.eval_on_selector_all("#output .translation", "nodes => nodes.map(n => n.textContent)")
        nbest = page.eval_on_selector_all("#nbest .text", "nodes => nodes.map(n => n.textContent)")
        heatmap = page.eval_on_selector("#heatmap", "c => [Number(c.dataset.rows), Number(c.dataset.columns)]")
        drawn = _drawn_pixels(page, "#heatmap")
        page.screenshot(path=str(tmp_path / "translation.png"), full_page=True)
        assert page.get_attribute("#status", "data-state") == "done"
        served = httpx.post(f"{url}/translate", json={"texts": [GERMAN]}, timeout=60).json()["translations"]
        details = httpx.post(f"{url}/translate/details", json={"text": GERMAN, "n_best": 5}, timeout=60).json()
    assert shown == served
    assert nbest == [h["text"] for h in details["hypotheses"]] and len(nbest) == 5
    assert heatmap == [len(details["attention"]), len(details["source_tokens"])] and heatmap[0] > 1
    assert drawn >= heatmap[0] * heatmap[1] * 100, "the attention heatmap was not drawn"  # cells of 25×25 pixels
    assert (tmp_path / "translation.png").stat().st_size > 0


def test_the_page_classifies_as_the_endpoint_does(browser: object, classifier_bundle: Path, tmp_path: Path) -> None:
    texts = ["a great fun movie", "an awful dull film"]
    app = create_app(seq2text.load(classifier_bundle), ServeConfig(max_chars=100))
    with running(app) as url, opened(browser, url) as page:
        assert page.inner_text("#run") == "Classify" and page.is_hidden("#n-best")
        _run(page, "\n".join(texts))
        labels = page.eval_on_selector_all("#output .label", "nodes => nodes.map(n => n.textContent)")
        bars = page.eval_on_selector_all("#output .result", """boxes => boxes.map(box => Object.fromEntries(
            [...box.querySelectorAll(".bar-row")].map(row => [row.dataset.label, row.dataset.p])))""")
        page.screenshot(path=str(tmp_path / "classification.png"), full_page=True)
        served = httpx.post(f"{url}/classify", json={"texts": texts}, timeout=60).json()
        _run(page, "x" * 101)  # over --max-chars: the server's error, as it says it
        error = page.inner_text("#error")
        refused = httpx.post(f"{url}/classify", json={"texts": ["x" * 101]}, timeout=60).json()["error"]
    assert labels == served["labels"]
    assert [{label: float(p) for label, p in shown.items()} for shown in bars] == served["probabilities"]
    assert error == refused and "--max-chars" in error
