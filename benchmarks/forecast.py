"""Forecasting benchmarks (issue 14): seq2text's LSTM forecaster against statsmodels' ETS and ARIMA, darts'
RNNModel and the seasonal-naive forecast, on one series, one split and one horizon, in the same run.

    pip install -r benchmarks/peers.txt                      # the peers, for benchmarks only
    python benchmarks/forecast.py forecast_co2 [recipe overrides...]
    python benchmarks/forecast.py forecast_sunspots --seeds 5        # the mean of 5 seeds' forecasts, both protocols
    python benchmarks/forecast.py export co2 data/co2_monthly.csv        # the table the recipe reads

The data are statsmodels' own datasets (offline, inside its wheel), read by `forecast_peers.load_series`. The last
`test_size` steps are the test part, the `valid_size` before them the validation part (used to choose the recipes
and the peers' settings). The peers are fitted once on training + validation. seq2text is trained both ways, in the
same run: `select`, the recipe as a user runs it (fitted on the training part, the validation part choosing the
checkpoint: early stopping), and `refit` (fitted on training + validation, `data.valid_size 0`, the last epoch kept;
its scales fitted there too). Everyone forecasts `horizon` steps from every test origin (rolling origin, stride 1)
without refitting, and is scored by the same `forecast_peers.scores`: MASE against the in-sample seasonal-naive error
of the training part. Writes benchmarks/results/forecast_<dataset>.json; `value` is seq2text's test MASE under
`select`, `mase_seq2text_refit` the other.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, fit_recipe, record
from forecast_peers import PEERS, Series, evaluate, load_series, rolling_windows, scores

COLUMNS = {"co2": "co2", "sunspots": "sunspots"}
PROTOCOLS = {"select": "fitted on the training part, the validation part choosing the checkpoint (early stopping)",
             "refit": "fitted on training + validation (data.valid_size 0), the last epoch kept"}


def export(series: Series, path: Path) -> Path:
    """Writes the dataset as the table the recipe reads: columns `time` and the value column."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"time": series.index, COLUMNS[series.name]: series.values}).to_csv(path, index=False)
    return path


def _seq2text(series: Series, out: Path, overrides: list[str], seeds: int, protocol: str
              ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Trains the recipe on the exported table (`seeds` times, seeds 1234, 1235, ...) under `protocol` (see
    PROTOCOLS); forecasts from every test origin with the bundle, or with the ensemble of the bundles (the mean of
    their forecasts).

    Returns:
        point forecasts and the 10%–90% interval (n_origins, horizon) and (n_origins, horizon, 2), and facts.
    """
    import pandas as pd

    import seq2text

    name = series.name
    table = export(series, out / f"{name}.csv")
    recipe = f"recipes/forecast_{name}.yaml"
    valid_size = "0" if protocol == "refit" else str(series.valid_size)
    extra = ["--data.init_args.path", str(table), "--data.init_args.valid_size", valid_size,
             "--data.init_args.test_size", str(series.test_size), "--data.init_args.horizon", str(series.horizon),
             "--data.init_args.season", str(series.season), *overrides]
    members = [out / protocol / f"seed_{1234 + k}" for k in range(seeds)]
    # no --budget: the recipe's epochs set the learning-rate schedule (a budget would stretch it over the budget)
    wall = [fit_recipe(recipe, member, [*extra, "--seed_everything", str(1234 + k)])
            for k, member in enumerate(members)]
    forecaster = seq2text.load([m / "bundle" for m in members] if seeds > 1 else members[0] / "bundle")
    frame = pd.read_csv(table)
    column = COLUMNS[name]
    start = time.monotonic()
    futures = [forecaster.forecast(frame.iloc[:origin]) for origin in rolling_windows(series)]
    predict_seconds = time.monotonic() - start
    points = np.stack([f[column].to_numpy() for f in futures])
    bands = np.stack([f[[f"{column}_q10", f"{column}_q90"]].to_numpy() for f in futures])
    metrics = [json.loads((m / "bundle" / "metrics.json").read_text()) for m in members]
    facts = {"protocol": PROTOCOLS[protocol], "wall_seconds": round(sum(wall), 1),
             "predict_seconds": round(predict_seconds, 2), "epochs": metrics[0].get("epochs"),
             "steps": metrics[0].get("global_step"), "precision": metrics[0].get("precision"),
             "member_test_mase_during_training": [round(m.get("test/mase", float("nan")), 4) for m in metrics],
             "note": "during training, MASE is scaled by the part the model was fitted on; the benchmark's by the "
                     "training part, for everyone"}
    return points, bands, facts


def forecast_benchmark(name: str, overrides: list[str], seeds: int = 1) -> dict:
    series = load_series(name)
    origins = rolling_windows(series)
    out = ROOT / "benchmarks" / "runs" / f"forecast_{name}"
    start = time.monotonic()
    actual = np.stack([series.values[o: o + series.horizon] for o in origins])
    ours = {}
    for protocol in PROTOCOLS:
        points, bands, facts = _seq2text(series, out, overrides, seeds, protocol)
        ours[protocol] = {**{k: round(v, 4) for k, v in scores(series.values, points, origins, series.horizon,
                                                                series.season, series.train_end).items()},
                          "interval_coverage_10_90": round(float(np.mean((bands[..., 0] <= actual)
                                                                         & (actual <= bands[..., 1]))), 3), **facts}
    peers = {peer: evaluate(series, origins, peer) for peer in ["seasonal_naive", *PEERS]}
    scored = {peer: result["mase"] for peer, result in peers.items() if "mase" in result}
    best = min((v for k, v in scored.items() if k != "seasonal_naive"), default=float("nan"))
    value = ours["select"]["mase"]
    return record(f"forecast_{name}", metric="test_mase", value=value,
                  split=f"test: last {series.test_size} steps, {len(origins)} rolling origins × horizon "
                        f"{series.horizon}; valid: the {series.valid_size} steps before", data=series.source,
                  season=series.season, horizon=series.horizon, recipe=f"recipes/forecast_{name}.yaml",
                  overrides=overrides, seeds=seeds, train_seconds=ours["select"]["wall_seconds"],
                  seq2text=ours["select"], seq2text_refit=ours["refit"],
                  interval_coverage_10_90=ours["select"]["interval_coverage_10_90"],
                  mase_seq2text_refit=ours["refit"]["mase"],
                  **{f"mase_{peer}": round(v, 4) for peer, v in scored.items()},
                  best_peer_mase=round(best, 4), beats_best_peer=bool(value <= best),
                  peers=peers, total_seconds=round(time.monotonic() - start, 1),
                  epochs=ours["select"]["epochs"], precision=ours["select"]["precision"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", help="forecast_co2, forecast_sunspots, or export")
    parser.add_argument("--seeds", type=int, default=1, help="train this many models (seeds 1234, 1235, ...) and "
                        "forecast with their ensemble (seq2text.ForecasterEnsemble)")
    args, rest = parser.parse_known_args()  # the rest: recipe overrides; for export, DATASET PATH
    args.rest = rest
    if args.benchmark == "export":
        if len(args.rest) != 2:
            raise SystemExit("usage: python benchmarks/forecast.py export DATASET PATH")
        print(export(load_series(args.rest[0]), Path(args.rest[1])))
    elif args.benchmark.removeprefix("forecast_") in COLUMNS:
        forecast_benchmark(args.benchmark.removeprefix("forecast_"), args.rest, args.seeds)
    else:
        sys.exit(f"unknown benchmark {args.benchmark!r}; use forecast_co2, forecast_sunspots or export")


if __name__ == "__main__":
    main()
