"""serve_faults: `seq2text serve --workers 2` losing model processes under load (issue 29), loopback only, bounded.

    python benchmarks/serve_faults.py [--model benchmarks/runs/multi30k_budget_fp32_30min/bundle] [--requests 1000]

One server with two model processes (one torch thread each) on 127.0.0.1, 32 concurrent clients sending one
Multi30k test sentence per request (test_2016_flickr.de, in order, cycled), three phases of `--requests` each:
1. before: requests/s with both processes up (after a warm-up phase of as many requests, not counted);
2. faults: 2 s into the phase model process 0 is killed with SIGKILL, and 6 s in its replacement (once it is up);
   `restart_seconds` is the time from each kill until /info shows a new, loaded process in its place (polled every
   20 ms, so it includes /info's wait behind the load; the server's own count, from the death it noticed to the
   new process loaded, is `restart_seconds_in_server`); every request must still get the in-process translation
   (`failed` counts those that did not: an error, no answer, or another translation);
3. after: requests/s once both processes are up again. `throughput_ratio_after_to_before` = 3 / 1.
Every phase has a bounded number of requests and a time limit, so the benchmark always stops by itself.
Writes benchmarks/results/serve_faults.json: value = failed requests over all phases.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time

from common import ROOT, record
from serve_load import _check_good, _free_port, _good_body, _load, _percentile, _start_server, _stop, _wait_healthy

SPLIT = "test (test_2016_flickr.de, 1000 sentences, cycled)"


async def _workers(client: object, url: str) -> dict:
    return (await client.get(f"{url}/info")).json()["workers"]


async def _kill_and_time(url: str, kill_at: tuple[float, ...], limit: float) -> list[dict]:
    """Kills model process 0 at each of `kill_at` seconds from now (waiting for it to be up first) → one record
    per kill: when, the pid killed, seconds until its replacement was up."""
    import httpx

    start, kills = time.perf_counter(), []
    async with httpx.AsyncClient(timeout=30) as client:
        for at in kill_at:
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            while not (workers := await _workers(client, url))["alive"][0]:  # the previous replacement loading
                await asyncio.sleep(0.02)
            pid = workers["pids"][0]
            os.kill(pid, signal.SIGKILL)
            killed = time.perf_counter()
            while True:
                workers = await _workers(client, url)
                if workers["pids"][0] != pid and workers["alive"][0]:
                    break
                if time.perf_counter() - killed > limit:
                    raise RuntimeError(f"model process 0 was not started again within {limit:.0f} s")
                await asyncio.sleep(0.02)
            kills.append({"at_seconds": round(killed - start, 2), "pid": pid, "new_pid": workers["pids"][0],
                          "restart_seconds": round(time.perf_counter() - killed, 2)})
    return kills


async def _phase(url: str, sentences: list[str], expected: list[str], args: argparse.Namespace,
                 kill_at: tuple[float, ...] = ()) -> dict:
    bodies = [_good_body(s) for s in sentences]
    start = time.perf_counter()
    killer = asyncio.create_task(_kill_and_time(url, kill_at, args.restart_limit)) if kill_at else None
    outcomes = await _load(url, bodies, args.clients, args.time_limit)
    seconds = time.perf_counter() - start
    kills = await killer if killer is not None else []
    failed, differ = _check_good(outcomes, expected)
    latencies = [o["latency"] for o in outcomes if o["latency"] is not None]
    return {"requests": len(bodies), "seconds": round(seconds, 2), "requests_per_sec": round(len(bodies) / seconds, 1),
            "failed": failed + differ, "errors": failed, "translated_differently": differ,
            "lost": sum(o["status"] is None for o in outcomes),
            "statuses": sorted({o["status"] for o in outcomes if o["status"] != 200}, key=str),
            "p50_latency_ms": round(1000 * statistics.median(latencies), 1),
            "p99_latency_ms": round(1000 * _percentile(latencies, 0.99), 1), "kills": kills}


async def _all_up(url: str, limit: float) -> dict:
    import httpx

    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(timeout=30) as client:
        while not all((workers := await _workers(client, url))["alive"]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the model processes were not all up within {limit:.0f} s: {workers}")
            await asyncio.sleep(0.05)
        ready = (await client.get(f"{url}/health/ready")).status_code
        metrics = (await client.get(f"{url}/metrics")).text
    return {"workers": workers, "ready_status": ready, "metrics_restarts": _sample(metrics, "seq2text_restarts_total")}


def _sample(text: str, name: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="benchmarks/runs/multi30k_budget_fp32_30min/bundle")
    parser.add_argument("--requests", type=int, default=1000, help="requests of each phase")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-at", type=float, nargs="+", default=[2.0, 6.0], help="seconds into the faults "
                        "phase at which model process 0 (then its replacement) is killed")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--restart-limit", type=float, default=120.0, help="seconds a restart may take")
    args = parser.parse_args()
    from seq2text.data.catalog import resolve_parallel
    from seq2text.predict.translator import Translator

    src_path, _ = resolve_parallel("multi30k", "de", "en", splits=("test",), allow_hub=False)["test"]
    test = src_path.read_text(encoding="utf-8").splitlines()
    sentences = [test[i % len(test)] for i in range(args.requests)]
    expected = Translator.load(args.model).translate(sentences)  # what every request must get
    port, log = _free_port(), ROOT / "benchmarks" / "runs" / "serve_faults.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    server = _start_server(args.model, port, args.max_batch_size, args.max_wait_ms, log, args.workers, threads=1)
    try:
        asyncio.run(_wait_healthy(url, server, log, 180))
        # warm-up: one whole phase, so that "before" does not pay for the kernels' first calls on each batch shape
        asyncio.run(_load(url, [_good_body(s) for s in sentences], args.clients, args.time_limit))
        before = asyncio.run(_phase(url, sentences, expected, args))
        faults = asyncio.run(_phase(url, sentences, expected, args, tuple(args.kill_at)))
        up = asyncio.run(_all_up(url, args.restart_limit))
        after = asyncio.run(_phase(url, sentences, expected, args))
    finally:
        exit_code = _stop(server)
    phases = {"before": before, "faults": faults, "after": after}
    failed = sum(p["failed"] for p in phases.values())
    restarts = [k["restart_seconds"] for k in faults["kills"]]
    record("serve_faults", metric="failed_requests", value=failed, failed=failed,
           restart_seconds=restarts, max_restart_seconds=max(restarts),
           throughput_ratio_after_to_before=round(after["requests_per_sec"] / before["requests_per_sec"], 3),
           requests_per_sec_before=before["requests_per_sec"], requests_per_sec_after=after["requests_per_sec"],
           requests_per_sec_during_faults=faults["requests_per_sec"],
           p99_latency_ms_during_faults=faults["p99_latency_ms"], p99_latency_ms_before=before["p99_latency_ms"],
           restart_seconds_in_server=up["workers"]["restart_seconds"],  # from each death to loaded, as /info says
           phases=phases, restarts_in_info=up["workers"]["restarts"], restarts_in_metrics=up["metrics_restarts"],
           ready_after=up["ready_status"], requests_per_phase=args.requests, clients=args.clients,
           workers=args.workers, server_threads=1, kill_at_seconds=args.kill_at, model=args.model, split=SPLIT,
           server_exit_code_after_sigterm=exit_code, serving="FastAPI + uvicorn, seq2text.serve",
           precision="32-true (predictors decode in float32)")


if __name__ == "__main__":
    main()
