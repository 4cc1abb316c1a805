"""serve_load: `seq2text serve` under load, against translating the same sentences in-process, in one run.

    python benchmarks/serve_load.py [--model benchmarks/runs/multi30k_quality_seed1234/bundle] [--requests 2000]

Starts `seq2text serve --workers W` on 127.0.0.1 (a free port; W model processes, one per core by default, each
with the cores divided among them: one torch thread each on a 2-core machine), then
1. 32 concurrent clients (httpx + asyncio) send `--requests` requests of one Multi30k test sentence each
   (test_2016_flickr.de, in order, cycled): requests/s, p50/p99 latency, failed or lost requests, and whether
   each translation equals the in-process one;
2. the same sentences translated in-process with `Translator.translate` in batches (the server idle):
   sentences/s, and the ratio of the server's requests/s to it (batches of 64, the Translator's default, and
   also batches capped at the server's --max-batch-size);
   phases 1 and 2 alternate for `--rounds` rounds, and each round's ratio pairs measurements taken a minute
   apart: this machine's speed drifts within minutes (neighbours on the host), so that a single server run
   against a single in-process run could land either side of the target. The record's figures are the
   medians over rounds (every round is kept in `rounds`, the spread in `ratio_to_in_process_range`);
3. `--mixed` requests of which 10% are malformed (bad JSON, missing or mistyped fields, too many texts, a
   text over the length limit): each malformed one must get a 4xx, each good one a 200 with the in-process
   translation;
4. SIGTERM: the server must finish the requests in flight and exit (uvicorn re-raises the signal: -15);
5. phase 1 again against a server with one worker (`--workers 1`: the model in a thread of the server's process,
   torch's threads one per core), for the ratio of W workers to one in the same run;
6. phase 1 again against a one-worker server started with `--batching dynamic` (a batch per group of requests,
   decoded to its end: the batcher before continuous batching), for the ratio of continuous batching to it, both
   in one process.
Every phase has a bounded number of requests and a time limit, so the benchmark always stops by itself.
Writes benchmarks/results/serve_load.json: value = requests/s of phase 1 (median over rounds), errors = failed
or lost requests (all phases), ratio_to_in_process (median over rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, record

from seq2text.hardware import usable_cores

SPLIT = "test (test_2016_flickr.de, 1000 sentences, cycled)"
MALFORMED = [  # (body, content type) of a bad request; each must get a 4xx
    (b'{"texts": ["ein Satz"', "application/json"),  # truncated JSON
    (b'{"text": "ein Satz"}', "application/json"),  # wrong field name
    (b'{"texts": "ein Satz"}', "application/json"),  # a string, not a list
    (b'{"texts": [42]}', "application/json"),  # not a string
    (b'{"texts": []}', "application/json"),  # no text
    (json.dumps({"texts": ["x" * 5000]}).encode(), "application/json"),  # over --max-chars
    (json.dumps({"texts": ["ein Satz"] * 200}).encode(), "application/json"),  # over --max-lines
    (b"ein Satz", "text/plain"),  # not JSON at all
    (b"\xff\xfe\x00garbage", "application/json"),  # not UTF-8
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(model: str, port: int, max_batch_size: int, max_wait_ms: float, log: Path, workers: int,
                  batching: str = "continuous", threads: int | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "seq2text.cli", "serve", "--model", model, "--host", "127.0.0.1", "--port",
               str(port), "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms),
               "--batching", batching, "--workers", str(workers), *(["--threads", str(threads)] if threads else [])]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True)


def _stop(server: subprocess.Popen) -> int | str:
    """SIGTERM, then the exit code (uvicorn re-raises the signal after its graceful shutdown), or a kill."""
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        return "killed after 60 s"


async def _wait_healthy(url: str, server: subprocess.Popen, log: Path, limit: float) -> None:
    """Waits for /health (a server with model processes answers once every one has loaded the model)."""
    import httpx

    deadline = time.monotonic() + limit
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}: {log.read_text()[-2000:]}")
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within {limit:.0f} s")


async def _load(url: str, bodies: list[tuple[bytes, str]], clients: int, limit: float) -> list[dict]:
    """Sends every body once from `clients` concurrent clients; one outcome per body (status None: lost)."""
    import httpx

    outcomes: list[dict] = [{"status": None, "latency": None, "json": None} for _ in bodies]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body, content_type = bodies[i]
            start = time.perf_counter()
            try:
                response = await client.post(f"{url}/translate", content=body, headers={"content-type": content_type})
            except httpx.HTTPError as error:
                outcomes[i] = {"status": None, "latency": None, "json": None, "error": repr(error)}
                continue
            outcomes[i] = {"status": response.status_code, "latency": time.perf_counter() - start,
                           "json": _json(response)}

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(limit)) as client:
        tasks = [asyncio.create_task(client_loop(client)) for _ in range(clients)]
        _, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
    return outcomes


def _client_versions() -> dict:
    """httpx's and httpcore's versions, and whether sniffio is installed (without it httpcore 1.0 pays a failed
    import at every request: the clients then take more of the cores they share with the server)."""
    from importlib.metadata import PackageNotFoundError, version

    def found(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: found(name) for name in ("httpx", "httpcore", "sniffio")}


def _json(response: object) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _good_body(sentence: str) -> tuple[bytes, str]:
    return json.dumps({"texts": [sentence]}).encode(), "application/json"


def _check_good(outcomes: list[dict], expected: list[str]) -> tuple[int, int]:
    """(failed or lost, translated differently from in-process) among good requests."""
    failed = sum(o["status"] != 200 for o in outcomes)
    differ = sum(o["status"] == 200 and o["json"]["translations"] != [e] for o, e in zip(outcomes, expected,
                                                                                       strict=True))
    return failed, differ


async def _phase1(url: str, sentences: list[str], in_process: list[str], args: argparse.Namespace) -> dict:
    """Warm-up, then one request per sentence: seconds, failed or lost and lost requests, translations that
    differ from in-process, latencies of the answered ones, and the server's /info."""
    import httpx

    good = [_good_body(s) for s in sentences]
    await _load(url, good[: args.clients], args.clients, args.time_limit)  # warm-up
    start = time.perf_counter()
    outcomes = await _load(url, good, args.clients, args.time_limit)
    seconds = time.perf_counter() - start
    async with httpx.AsyncClient() as client:
        info = (await client.get(f"{url}/info")).json()
    failed, differ = _check_good(outcomes, in_process)
    return {"seconds": seconds, "failed": failed, "differ": differ, "info": info,
            "lost": sum(o["status"] is None for o in outcomes),
            "latencies": [o["latency"] for o in outcomes if o["latency"] is not None]}


async def _mixed(url: str, sentences: list[str], in_process: list[str], args: argparse.Namespace) -> dict:
    """`args.mixed` requests, every tenth malformed: the malformed ones not answered 4xx, the good ones failed
    or translated differently."""
    good = [_good_body(s) for s in sentences]
    mixed_plan = [i % 10 == 9 for i in range(args.mixed)]
    mixed_bodies = [MALFORMED[i // 10 % len(MALFORMED)] if bad else good[i % len(good)]
                    for i, bad in enumerate(mixed_plan)]
    mixed = await _load(url, mixed_bodies, args.clients, args.time_limit)
    bad_outcomes = [o for o, bad in zip(mixed, mixed_plan, strict=True) if bad]
    good_outcomes = [o for o, bad in zip(mixed, mixed_plan, strict=True) if not bad]
    mixed_failed, mixed_differ = _check_good(good_outcomes, [in_process[i % len(good)]
                                                              for i, bad in enumerate(mixed_plan) if not bad])
    bad_not_4xx = sum(not (o["status"] and 400 <= o["status"] < 500) for o in bad_outcomes)
    return {"mixed_failed": mixed_failed, "mixed_differ": mixed_differ, "bad_not_4xx": bad_not_4xx,
            "bad": len(bad_outcomes), "mixed_good": len(good_outcomes),
            "bad_statuses": sorted({o["status"] for o in bad_outcomes if o["status"]})}


def _other_server(args: argparse.Namespace, sentences: list[str], in_process: list[str], log: Path, workers: int,
                  batching: str) -> dict:
    """Phase 1 against another server: `--batching dynamic`, or one worker."""
    port = _free_port()
    threads = args.server_threads if workers == args.workers else None
    server = _start_server(args.model, port, args.max_batch_size, args.max_wait_ms, log, workers, batching, threads)
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_healthy(url, server, log, 180))
        result = asyncio.run(_phase1(url, sentences, in_process, args))
    finally:
        _stop(server)
    return {"requests_per_sec": round(len(sentences) / result["seconds"], 1), "failed_or_lost": result["failed"],
            "translated_differently": result["differ"], "server_batching": result["info"]["batching"],
            "p50_latency_ms": round(1000 * statistics.median(result["latencies"]), 1)}


def _in_process(translator: object, sentences: list[str], batch_size: int) -> tuple[list[str], float]:
    start = time.perf_counter()
    hypotheses = translator.translate(sentences, batch_size=batch_size)
    return hypotheses, time.perf_counter() - start


def _rounds(args: argparse.Namespace, sentences: list[str]) -> tuple[list[dict], list[str], dict]:
    """Phases 1 and 2, alternated: (one record per round, the in-process translations, the last round's
    server-side result)."""
    from seq2text.predict.translator import Translator

    translator = Translator.load(args.model)
    translator.translate(sentences[:32])  # warm-up
    rounds, in_process, result = [], None, None
    for _ in range(args.rounds):
        hyps, in_seconds = _in_process(translator, sentences, args.in_process_batch_size)
        same_batch, same_batch_seconds = _in_process(translator, sentences, args.max_batch_size)
        if in_process is not None and hyps != in_process:
            raise RuntimeError("in-process translations changed between rounds")
        in_process = hyps
        result = asyncio.run(_phase1(f"http://127.0.0.1:{args.port}", sentences, in_process, args))
        rps, in_rate = len(sentences) / result["seconds"], len(sentences) / in_seconds
        same_rate = len(sentences) / same_batch_seconds
        rounds.append({"requests_per_sec": round(rps, 1), "in_process_sentences_per_sec": round(in_rate, 1),
                       "in_process_same_max_batch_sentences_per_sec": round(same_rate, 1),
                       "ratio_to_in_process": round(rps / in_rate, 3),
                       "ratio_to_in_process_same_max_batch": round(rps / same_rate, 3),
                       "failed_or_lost": result["failed"], "lost": result["lost"],
                       "translated_differently": result["differ"],
                       "in_process_same_max_batch_identical": same_batch == in_process,
                       "p50_latency_ms": round(1000 * statistics.median(result["latencies"]), 1),
                       "p99_latency_ms": round(1000 * _percentile(result["latencies"], 0.99), 1)})
    return rounds, in_process, result


def _median(rounds: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="benchmarks/runs/multi30k_quality_seed1234/bundle")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="phases 1 and 2 alternated this many times")
    parser.add_argument("--mixed", type=int, default=1000, help="requests of the malformed-mix phase (10%% bad)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--in-process-batch-size", type=int, default=64, help="Translator.translate's default")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per phase")
    parser.add_argument("--no-dynamic", action="store_true", help="skip phase 6 (the --batching dynamic server)")
    parser.add_argument("--workers", type=int, default=usable_cores(),
                        help="the server's --workers (default: one per core)")
    parser.add_argument("--server-threads", type=int, default=None, help="the server's --threads (default: "
                        "the cores divided among the workers)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be ≥ 1")
    if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) in (os.SCHED_RR, os.SCHED_FIFO):
        print("serve_load: running under a real-time scheduler (chrt): the model processes will keep their cores "
              "for whole time slices and starve the HTTP side; run it under the normal scheduler", file=sys.stderr)
    from seq2text.data.catalog import resolve_parallel

    src_path, _ = resolve_parallel("multi30k", "de", "en", splits=("test",), allow_hub=False)["test"]
    test = src_path.read_text(encoding="utf-8").splitlines()
    sentences = [test[i % len(test)] for i in range(args.requests)]
    args.port = _free_port()
    log = ROOT / "benchmarks" / "runs" / "serve_load.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = _start_server(args.model, args.port, args.max_batch_size, args.max_wait_ms, log, args.workers,
                           threads=args.server_threads)
    try:
        asyncio.run(_wait_healthy(f"http://127.0.0.1:{args.port}", server, log, 180))
        rounds, in_process, result = _rounds(args, sentences)
        mixed = asyncio.run(_mixed(f"http://127.0.0.1:{args.port}", sentences, in_process, args))
    finally:
        exit_code = _stop(server)
    one = None if args.workers == 1 else _other_server(args, sentences, in_process,
                                                       log.with_name("serve_load_one_worker.log"), 1, "continuous")
    dynamic = None if args.no_dynamic else _other_server(args, sentences, in_process,
                                                         log.with_name("serve_load_dynamic.log"), 1, "dynamic")
    lost = sum(r["lost"] for r in rounds)
    errors = (sum(r["failed_or_lost"] for r in rounds) + mixed["mixed_failed"] + mixed["bad_not_4xx"]
              + (dynamic or {}).get("failed_or_lost", 0) + (one or {}).get("failed_or_lost", 0))
    rps = _median(rounds, "requests_per_sec")
    one_rps = rps if one is None else one["requests_per_sec"]  # continuous against dynamic: both in one process
    versus = {} if dynamic is None else {"dynamic_batching": dynamic, "dynamic_requests_per_sec":
                                         dynamic["requests_per_sec"], "ratio_continuous_to_dynamic":
                                         round(one_rps / dynamic["requests_per_sec"], 3)}
    if one is not None:
        versus.update(one_worker=one, one_worker_requests_per_sec=one["requests_per_sec"],
                      ratio_workers_to_one=round(rps / one["requests_per_sec"], 3))
    ratios = [r["ratio_to_in_process"] for r in rounds]
    record("serve_load", metric="requests_per_sec", value=round(rps, 1), errors=errors, lost=lost,
           ratio_to_in_process=_median(rounds, "ratio_to_in_process"),
           ratio_to_in_process_range=[min(ratios), max(ratios)],
           in_process_sentences_per_sec=_median(rounds, "in_process_sentences_per_sec"),
           in_process_batch_size=args.in_process_batch_size, requests=len(sentences), clients=args.clients,
           # the same, in-process batches capped at the server's --max-batch-size (32 clients never fill more)
           ratio_to_in_process_same_max_batch=_median(rounds, "ratio_to_in_process_same_max_batch"),
           in_process_same_max_batch_sentences_per_sec=_median(rounds, "in_process_same_max_batch_sentences_per_sec"),
           in_process_same_max_batch_identical=all(r["in_process_same_max_batch_identical"] for r in rounds),
           p50_latency_ms=_median(rounds, "p50_latency_ms"), p99_latency_ms=_median(rounds, "p99_latency_ms"),
           identical_to_in_process=round(1 - sum(r["translated_differently"] for r in rounds)
                                         / (len(sentences) * len(rounds)), 4),
           rounds=rounds, server_batching=result["info"]["batching"], beam_size=5, model=args.model, **versus,
           workers=args.workers, server_threads=args.server_threads or "the cores divided among the workers",
           server_threads_info=result["info"].get("threads"),  # torch's threads and OpenMP's wait policy
           mixed={"requests": args.mixed, "malformed": mixed["bad"], "malformed_not_4xx": mixed["bad_not_4xx"],
                  "malformed_statuses": mixed["bad_statuses"], "good": mixed["mixed_good"],
                  "good_failed": mixed["mixed_failed"], "good_translated_differently": mixed["mixed_differ"]},
           server_exit_code_after_sigterm=exit_code,  # uvicorn re-raises the signal after its graceful shutdown
           graceful_shutdown="Finished server process" in log.read_text(), split=SPLIT,
           serving="FastAPI + uvicorn, seq2text.serve", client=_client_versions(),
           precision="32-true (predictors decode in float32)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
