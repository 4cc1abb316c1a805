"""Forecasting benchmarks (issues 14 and 30): seq2text's automatic configuration against statsforecast's AutoARIMA
and AutoETS, statsmodels' ETS and ARIMA, darts' RNNModel and the seasonal-naive forecast, on the same split and
horizon, in the same run.

    pip install -r benchmarks/peers.txt 'seq2text[tune]'     # the peers and Optuna
    python benchmarks/forecast.py forecast_co2                # or forecast_sunspots, forecast_macro_panel
    python benchmarks/forecast.py forecast_co2 --trials 30 --budget 10m    # the defaults: the same for every dataset
    python benchmarks/forecast.py export co2 data/co2_monthly.csv          # the table the recipes read
    python benchmarks/forecast.py forecast_precision --rounds 4   # fp32 against bf16-mixed (a CPU with native bf16)

The headline (`value`, `mase_seq2text`) is ONE command with the same budget on every dataset: `seq2text fit --config
recipes/forecast_auto.yaml --tune BUDGET --tune_trials TRIALS` on the exported table. It searches the configuration
on the validation part only (rolling origins; its test part is cut off before any trial), calibrates the 10 %–90 %
band there (conformal), and refits on training + validation; only the season, horizon and split sizes of the
protocol are given. The search stops after TRIALS trials (seeded TPE: the result does not depend on the machine's
speed) or BUDGET of wall-clock time, whichever comes first: the record says which. The hand-tuned recipes of co2 and
sunspots run too (`recipe_example`, chosen in the past while looking at test scores too: not the headline).

The data are statsmodels' own datasets (offline, inside its wheel), read by `forecast_peers.load_panel`. The last
`test_size` steps of each series are the test part, the `valid_size` before them the validation part. The peers are
fitted once on training + validation, per series. Everyone forecasts `horizon` steps from every test origin (rolling
origin, stride 1) without refitting, and is scored by the same `forecast_peers.scores`: MASE against the in-sample
seasonal-naive error of the training part; for a panel, each series' MASE, averaged over the series.
`interval_coverage_10_90`: the share of test values inside seq2text's calibrated 10 %–90 % band (nominal 0.8).
Writes benchmarks/results/forecast_<dataset>.json.

The runs use one torch thread per process unless OMP_NUM_THREADS is given (recorded under `environment`): these models
are tiny and a second thread only adds waiting on a shared 2-core machine. A headline series run alone on 2 cores
takes OMP_NUM_THREADS=2: the tuner's pooled searches then run side by side, one thread each.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads (see the docstring)

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from common import RESULTS, ROOT, fit_recipe, record  # noqa: E402
from forecast_peers import (  # noqa: E402
    DATASETS,
    DEV_DATASETS,
    DEV_PANELS,
    PANELS,
    PEERS,
    Series,
    evaluate,
    load_panel,
    rolling_windows,
    scores,
)

COLUMNS = {"co2": "co2", "sunspots": "sunspots"}  # the value column of the exported table (else `value`)
AUTO_RECIPE = "recipes/forecast_auto.yaml"
TRIALS, BUDGET, FOLDS, MEMBERS, CALIBRATION = 20, "10m", 1, 5, 1  # the same for every dataset
DEV_VARIANT_OPTIONS = {"local": ["--tune_band", "local"], "series": ["--tune_band", "series"],
                       "nolinear": ["--tune_linear", "false"], "linear": ["--tune_linear", "true"],
                       "steps": ["--trainer.min_steps"], "epochs": ["--trainer.max_epochs"], "seeds": ["--tune_seeds"],
                       "portfolio": ["--tune_start"], "noportfolio": ["--tune_start", "none"],
                       "online": ["--tune_online", "true"], "offline": ["--tune_online", "false"],
                       "transform": ["--data.init_args.transform", "auto"],
                       "notransform": ["--data.init_args.transform", "none"],
                       "log": ["--data.init_args.transform", "log"],
                       "sqrt": ["--data.init_args.transform", "sqrt"],
                       "forward": ["--tune_selection", "forward"], "best": ["--tune_selection", "best"],
                       "choose": ["--tune_transform", "validation"], "rule": ["--tune_transform", "rule"],
                       "damped": ["--model.init_args.network.damping"], "recency": ["--data.init_args.recency"],
                       "seasonal": ["--model.init_args.network.baseline", "seasonal"],
                       "searchrecency": ["--tune_recency", "true"], "searchdropout": ["--tune_dropout", "true"],
                       "compact": ["--tune_space", "compact"], "seed": ["--seed_everything"],
                       "searches": ["--tune_searches"]}
PERCENT_OPTIONS = ("damped", "recency")  # their number is a percentage: damped90 → 0.9
# variants' -suffixes (`steps500`, `epochs15`: the number appended; `portfolio`: PORTFOLIO without the series itself,
# written to a file beside the run)
# the band's calibrations a record scores (`_forecasts`), by key: online with its level adapting (a bundle that does
# not adapt: at the tuner's default rate, tasks.tuning.ADAPT), online at the nominal level, the validation part's alone
BANDS = ("adaptive", "online", "offline")
DEV_PEERS = ("seasonal_naive", "arima", "autoarima", "autoets")
PANEL_PEERS = ("seasonal_naive", "ets", "arima", "autoarima", "autoets", "darts_rnn")


def export(panel: list[Series], name: str, path: Path) -> Path:
    """Writes the dataset as the table the recipes read: `time` and the value column (a panel: `time`, `series`,
    `value`, one block of rows per series)."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    if len(panel) == 1:
        frame = pd.DataFrame({"time": panel[0].index, COLUMNS.get(name, "value"): panel[0].values})
    else:
        frame = pd.concat([pd.DataFrame({"time": s.index, "series": _series_id(s), "value": s.values})
                           for s in panel], ignore_index=True)
    frame.to_csv(path, index=False)
    return path


def _series_id(series: Series) -> str:
    """A panel member's id in the exported table: its name without the panel's prefix (`macro_cpi` → `cpi`)."""
    return series.name.partition("_")[2]


def _protocol_args(name: str, series: Series, table: Path, panel: bool = False) -> list[str]:
    extra = ["--data.init_args.path", str(table), "--data.init_args.value_columns", f"[{COLUMNS.get(name, 'value')}]",
             "--data.init_args.valid_size", str(series.valid_size), "--data.init_args.test_size",
             str(series.test_size), "--data.init_args.horizon", str(series.horizon), "--data.init_args.season",
             str(series.season)]
    return extra + (["--data.init_args.id_column", "series"] if panel else [])


def _forecasts(bundle: Path, name: str, panel: list[Series], table: Path, calibration: str = "bundle"
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each series' point forecasts (n_origins, horizon) and 10 %–90 % bands (n_origins, horizon, 2) from every test
    origin (a panel: all series forecast together from the history before each origin); `calibration`: the bundle's,
    `none`, the search record's `alternative` (the band in the other units), the bundle's `online` / `offline`
    (with or without the scores of the windows the history holds after the fit, at the nominal level), or `adaptR`
    (online, the level moved by adaptive conformal inference at rate R); `online+decayK` / `adaptR+decayK`: each
    online score's weight halving every K × max(season, horizon) steps of its age (`conformal.decayed`); a trailing
    `+median`: the members' median instead of their mean (point forecasts, and so MASE, change), `+medianpoint`:
    the point forecasts' median and the band edges' mean; `+origin` before either: the adaptive level moved once
    per origin time, `+series`: a level per series (`conformal.adapted_level` by)."""
    import pandas as pd

    import seq2text

    forecaster = seq2text.load(bundle)
    calibration, *point = calibration.split("+medianpoint")  # +medianpoint: the point by the median, edges by mean
    forecaster.combine = "median-point" if point else forecaster.combine
    calibration, *median = calibration.split("+median")  # +median: the members' median instead of their mean
    forecaster.combine = "median" if median else forecaster.combine
    calibration, *by_series = calibration.split("+series")  # +series: an adaptive level per series
    calibration, *by_origin = calibration.split("+origin")  # +origin: adaptive level moved once per origin time
    if by_origin or by_series:
        forecaster.calibration = {**forecaster.calibration, "adapt_by": "origin" if by_origin else "series"}
    calibration, *decay = calibration.split("+decay")  # +decayK: online scores' half-life, K × max(season, horizon)
    if decay:
        forecaster.calibration = {**forecaster.calibration,
                                  "decay": float(decay[0]) * max(panel[0].season, panel[0].horizon)}
    if calibration in ("online", "offline"):
        forecaster.calibration = {**forecaster.calibration, "online": calibration == "online", "adapt": 0.0}
    elif calibration.startswith("adapt"):
        forecaster.calibration = {**forecaster.calibration, "online": True,
                                  "adapt": float(calibration.removeprefix("adapt"))}
    elif calibration != "bundle":
        forecaster.calibration = forecaster.metrics["search"]["calibration_alternative"] \
            if calibration == "alternative" else None
    frame, column = pd.read_csv(table, parse_dates=["time"]), COLUMNS.get(name, "value")
    points, bands = [[] for _ in panel], [[] for _ in panel]
    for origin in rolling_windows(panel[0]):
        future = forecaster.forecast(frame[frame["time"] < panel[0].index[origin]])
        for k, series in enumerate(panel):
            rows = future[future["series"] == _series_id(series)] if len(panel) > 1 else future
            points[k].append(rows[column].to_numpy())
            if f"{column}_q10" in rows:
                bands[k].append(rows[[f"{column}_q10", f"{column}_q90"]].to_numpy())
    return [np.stack(p) for p in points], [np.stack(b) if b else None for b in bands]


def _band_calibration(key: str) -> str:
    """The `_forecasts` calibration of a BANDS key."""
    from seq2text.tasks.tuning import ADAPT

    return f"adapt{ADAPT}" if key == "adaptive" else key


def _score(panel: list[Series], points: list[np.ndarray], bands: list[np.ndarray | None]) -> dict:
    """Scores averaged over the series (MASE: each series' own scale), and the band's coverage of all test values."""
    per_series = [scores(s.values, p, rolling_windows(s), s.horizon, s.season, s.train_end)
                  for s, p in zip(panel, points, strict=True)]
    result = {key: round(float(np.mean([r[key] for r in per_series])), 4) for key in per_series[0]}
    if all(b is not None for b in bands):
        inside = [((b[..., 0] <= a) & (a <= b[..., 1])).ravel() for s, b in zip(panel, bands, strict=True)
                  for a in [np.stack([s.values[o:o + s.horizon] for o in rolling_windows(s)])]]
        result["interval_coverage_10_90"] = round(float(np.concatenate(inside).mean()), 3)
    if len(panel) > 1:
        result["mase_per_series"] = {s.name: round(r["mase"], 4) for s, r in zip(panel, per_series, strict=True)}
    return result


def _auto(name: str, panel: list[Series], out: Path, trials: int, budget: str, folds: int = FOLDS,
          members: int = MEMBERS, calibration: int = CALIBRATION, options: list[str] = ()) -> dict:
    """The headline: one `seq2text fit --tune` command on the exported table; its test scores and search record."""
    table = export(panel, name, out / f"{name}.csv")
    bundle = out / "auto" / "bundle"
    extra = [*_protocol_args(name, panel[0], table, len(panel) > 1), "--tune", budget, "--tune_trials", str(trials),
             "--tune_folds", str(folds), "--tune_members", str(members), "--tune_calibration_folds", str(calibration),
             *options]
    wall = fit_recipe(AUTO_RECIPE, out / "auto", extra)
    metrics = json.loads((bundle / "metrics.json").read_text())
    search = metrics["search"]
    config = json.loads((bundle / "config.json").read_text())
    points, bands = _forecasts(bundle, name, panel, table)
    result = {**_score(panel, points, bands), "wall_seconds": round(wall, 1)}
    band = config["calibration"]
    own = "adaptive" if band.get("adapt") else "online" if band["online"] else "offline"
    result[f"interval_coverage_10_90_{own}"] = result.get("interval_coverage_10_90")  # the bundle's own band
    for calibration, key in (("none", "uncalibrated"), ("alternative", "alternative_units"),
                             *((_band_calibration(key), key) for key in BANDS if key != own)):
        other_points, other_bands = _forecasts(bundle, name, panel, table, calibration)
        if all(b is not None for b in other_bands):
            other = _score(panel, other_points, other_bands)
            result[f"interval_coverage_10_90_{key}"] = other["interval_coverage_10_90"]
    stopped = "trials" if len(search["trials"]) >= trials else "time budget"
    tuning = {"folds": search["folds"], "members": len(search["ensemble"]["members"]),
              "calibration_folds": search["calibration"]["folds"],
              "ensemble_valid_mase": search["ensemble"]["valid_mase"], "trials": len(search["trials"]),
              "completed": search["completed"], "pruned": search["pruned"],
              "trial_limit": trials, "budget": budget, "stopped_by": stopped, "chosen": search["chosen"],
              "valid_mase": round(search["valid_mase"], 4), "search_seconds": search["search_seconds"],
              "refit_seconds": search["refit_seconds"], "sampler": search["sampler"],
              "calibration_offsets": search["calibration"]["offsets"], "band_units": search["calibration"]["units"],
              "alternative_units": search["calibration_alternative"]["units"],
              "linear_members": sum(m["params"]["rnn_type"] == "linear" for m in search["ensemble"]["members"]),
              "valid_coverage_before_calibration": search["calibration"]["valid_coverage_before"],
              "transform": config["reading"].get("power", 1.0)}
    return {**result, "tuning": tuning, "precision": metrics.get("precision"),
            "command": "seq2text fit --config " + " ".join([AUTO_RECIPE, *extra])}


def _recipe_example(name: str, series: Series, out: Path) -> dict:
    """The hand-tuned recipe (co2, sunspots), fitted on the training part with early stopping as a user runs it."""
    table = export([series], name, out / f"{name}.csv")
    recipe = f"recipes/forecast_{name}.yaml"
    wall = fit_recipe(recipe, out / "recipe", [*_protocol_args(name, series, table), "--seed_everything", "1234"])
    points, bands = _forecasts(out / "recipe" / "bundle", name, [series], table)
    return {"recipe": recipe, **_score([series], points, bands), "wall_seconds": round(wall, 1),
            "note": "hand-tuned in the past while looking at test scores too: an example, not the headline"}


def _peers(panel: list[Series], peers: list[str]) -> dict[str, dict]:
    """Each peer fitted per series; a panel's scores averaged over the series."""
    results = {}
    for peer in peers:
        runs = [evaluate(s, rolling_windows(s), peer) for s in panel]
        if any("error" in r for r in runs):
            results[peer] = next(r for r in runs if "error" in r)
            continue
        results[peer] = {key: round(float(np.mean([r[key] for r in runs])), 4) for key in
                         ("mae", "rmse", "smape", "mase", "rel_mae_snaive", "fit_seconds", "total_seconds")}
        results[peer]["note"] = runs[0]["note"] if len(runs) == 1 else f"per series, averaged over {len(runs)}; " \
            f"first series: {runs[0]['note']}"
        if len(panel) > 1:
            results[peer]["mase_per_series"] = {s.name: r["mase"] for s, r in zip(panel, runs, strict=True)}
    return results


def forecast_benchmark(name: str, trials: int, budget: str, peers: list[str], examples: bool, folds: int,
                       members: int, calibration: int, record_name: str | None = None) -> dict:
    """The `forecast_<name>` benchmark (see the module docstring), recorded as `record_name` (default its own)."""
    panel = load_panel(name)
    first = panel[0]
    record_name = record_name or f"forecast_{name}"
    out = ROOT / "benchmarks" / "runs" / record_name
    start = time.monotonic()
    auto = _auto(name, panel, out, trials, budget, folds, members, calibration)
    example = _recipe_example(name, first, out) if examples and len(panel) == 1 else None
    results = _peers(panel, peers)
    scored = {peer: r["mase"] for peer, r in results.items() if "mase" in r}
    best = min(scored.values(), default=float("nan"))
    value = auto["mase"]
    series_note = f" per series ({len(panel)} series, MASE averaged over them)" if len(panel) > 1 else ""
    return record(record_name, metric="test_mase", value=value,
                  split=f"test: last {first.test_size} steps{series_note}, {len(rolling_windows(first))} rolling "
                        f"origins × horizon {first.horizon}; valid: the {first.valid_size} steps before (the tuner's "
                        "only score); train: the rest", data=first.source,
                  season=first.season, horizon=first.horizon, recipe=AUTO_RECIPE, tune_trials=trials,
                  tune_budget=budget, tune_folds=folds, tune_members=members,
                  tune_calibration_folds=calibration, train_seconds=auto["wall_seconds"],
                  seq2text=auto,
                  mase_seq2text=value, interval_coverage_10_90=auto.get("interval_coverage_10_90"),
                  interval_coverage_10_90_uncalibrated=auto.get("interval_coverage_10_90_uncalibrated"),
                  interval_coverage_10_90_alternative_units=auto.get("interval_coverage_10_90_alternative_units"),
                  **{f"interval_coverage_10_90_{key}": auto.get(f"interval_coverage_10_90_{key}") for key in BANDS},
                  **{f"mase_{peer}": round(v, 4) for peer, v in scored.items()},
                  best_peer=min(scored, key=scored.get) if scored else None,
                  best_peer_mase=round(best, 4), beats_best_peer=bool(value <= best),
                  recipe_example=example, mase_recipe_example=example["mase"] if example else None,
                  peers=results, total_seconds=round(time.monotonic() - start, 1), precision=auto["precision"])


def forecast_dev(trials: int, budget: str, variants: list[str], datasets: list[str], name: str) -> dict:
    """The development benchmark: each of DEV_DATASETS and DEV_PANELS (never the benchmark series) tuned with each
    variant `FOLDSxMEMBERS[cCALIBRATION][-OPTION...]` (e.g. `1x1`: the single validation block and the best
    configuration alone; `3x5`: three blocks and the mean of the five best; `1x5c3`: one block to choose, three to
    calibrate the band; without `c`, the band is calibrated on the blocks that chose; options DEV_VARIANT_OPTIONS:
    `-local` / `-series` the band's units, `-linear` / `-nolinear` the search with or without the linear cell,
    `-stepsN` every fit at least N optimizer steps, `-epochsN` N epochs, `-seedsN` each member refitted from N
    seeds, `-trialsN` N trials instead of `trials`, `-portfolio` / `-noportfolio` the search starts from the
    portfolio of the other development series' best configurations or not, `-transform` / `-notransform` the values
    power-transformed by the range-mean rule (`data.transform auto`, the recipe's default) or not, `-log` / `-sqrt`
    that transform whatever the rule picks, `-forward` / `-best` the ensemble by forward selection or the best
    scores, `-choose` / `-rule` the transform chosen on the validation part between the rule's pick and none, or the
    rule's pick, `-dampedN` every network's forecast relative to a damped-trend baseline of φ = N / 100,
    `-recencyN` training windows weighted by recency with a half-life of N % of the training part, `-seasonal`
    every network's forecast relative to the seasonal-naive one instead of the last value, `-searchrecency` a
    panel's search drawing the recency half-life too, `-searchdropout` the search drawing the dropout too, `-compact`
    the compact search space, `-seedN` the recipe's seed N: the search's sampler and every fit's, `-searchesK` K
    searches pooled: the default is 3 since 04e7fe3's rule, `-searches1` one search as before), the same budget,
    against its peers: where the tuner's method is chosen. Each run also records
    the coverage of the band in the other units (`interval_coverage_10_90_alternative_units`: the same members, the
    other calibration)."""
    start, runs, precisions = time.monotonic(), {}, set()
    for dataset in datasets:
        panel = load_panel(dataset)
        peers = {peer: r["mase"] for peer, r in _peers(panel, list(DEV_PEERS)).items() if "mase" in r}
        best = min(peers.values())
        runs[dataset] = {"peers": peers, "best_peer_mase": round(best, 4), "protocol": {
            "season": panel[0].season, "horizon": panel[0].horizon, "valid_size": panel[0].valid_size,
            "test_size": panel[0].test_size, "source": panel[0].source}}
        for variant in variants:
            counts, *options = variant.split("-")
            folds, _, rest = counts.partition("x")
            members, _, calibration = rest.partition("c")
            limit = next((int(o.removeprefix("trials")) for o in options if o.startswith("trials")), trials)
            out = ROOT / "benchmarks" / "runs" / name / dataset / variant
            auto = _auto(dataset, panel, out, limit, budget, int(folds), int(members), int(calibration or folds),
                         _variant_args(options, dataset, out))
            precisions.add(auto["precision"])
            runs[dataset][variant] = {
                "mase": auto["mase"], "relative_to_best_peer": round(auto["mase"] / best, 4),
                "interval_coverage_10_90": auto.get("interval_coverage_10_90"),
                "interval_coverage_10_90_uncalibrated": auto.get("interval_coverage_10_90_uncalibrated"),
                "interval_coverage_10_90_alternative_units": auto.get("interval_coverage_10_90_alternative_units"),
                **{f"interval_coverage_10_90_{key}": auto.get(f"interval_coverage_10_90_{key}")
                   for key in BANDS},
                **({"mase_per_series": auto["mase_per_series"]} if "mase_per_series" in auto else {}),
                "transform": auto["tuning"]["transform"],
                **{k: auto["tuning"][k] for k in ("valid_mase", "ensemble_valid_mase", "folds", "members",
                                                  "calibration_folds", "chosen", "band_units", "alternative_units",
                                                  "linear_members",
                                                  "search_seconds", "refit_seconds")}}
    summary = {variant: {
        "geometric_mean_relative_mase": _geometric_mean(r[variant]["relative_to_best_peer"] for r in runs.values()),
        "beats_best_peer": sum(r[variant]["relative_to_best_peer"] <= 1 for r in runs.values()),
        "mean_abs_coverage_gap": _coverage_gap(r[variant]["interval_coverage_10_90"] for r in runs.values()),
        **{f"mean_abs_coverage_gap_{key}": _coverage_gap(r[variant][f"interval_coverage_10_90_{key}"]
                                                         for r in runs.values())
           for key in ("alternative_units", *BANDS)
           if all(r[variant].get(f"interval_coverage_10_90_{key}") is not None for r in runs.values())}}
        for variant in variants}
    headline = summary[variants[-1]]["geometric_mean_relative_mase"]
    return record(name, metric="geometric_mean_test_mase_relative_to_best_peer", value=headline,
                  split="each series' own protocol (see runs.*.protocol): test the last test_size steps, rolling "
                        "origins × horizon; valid the valid_size before; the tuner scores on train | valid only",
                  data="development series: " + ", ".join(datasets), tune_trials=trials, tune_budget=budget,
                  variants=variants, summary=summary, runs=runs, total_seconds=round(time.monotonic() - start, 1),
                  precision=" and ".join(sorted(map(str, precisions))),
                  note="where the tuner's method was chosen: variants FOLDSxMEMBERS (cross-validation blocks × "
                       "configurations averaged), before the benchmark series were run again")


def forecast_rescore(sources: list[str], variant: str, calibrations: list[str], datasets: list[str], name: str
                     ) -> dict:
    """The bands of the `sources` records' development bundles (variant `variant`, as their runs left them; each set
    from the first record that holds it) under each of `calibrations` (see `_forecasts`), without training anything:
    where a calibration's method is chosen (the point forecasts, and so MASE, are the bundles' own)."""
    start, runs = time.monotonic(), {}
    peers = _best_peers(sources)
    for dataset in datasets:
        panel = load_panel(dataset)
        bundle, table = _bundle_of(sources, dataset, variant)
        scored = [_score(panel, *_forecasts(bundle, dataset, panel, table, c)) for c in calibrations]
        runs[dataset] = {"mase": scored[0]["mase"], "bundle": str(bundle.relative_to(ROOT)),
                         "best_peer_mase": peers[dataset],
                         **{f"interval_coverage_10_90_{c}": one["interval_coverage_10_90"]
                            for c, one in zip(calibrations, scored, strict=True)},
                         **{f"mase_{c}": one["mase"] for c, one in zip(calibrations, scored, strict=True)}}
    summary = {c: {"mean_abs_coverage_gap": _coverage_gap(r[f"interval_coverage_10_90_{c}"] for r in runs.values()),
                   "outside_75_85": sum(not 0.75 <= r[f"interval_coverage_10_90_{c}"] <= 0.85 for r in runs.values()),
                   "geometric_mean_relative_mase": _geometric_mean(r[f"mase_{c}"] / r["best_peer_mase"]
                                                                   for r in runs.values())}
               for c in calibrations}
    return record(name, metric=f"mean_abs_coverage_gap_{calibrations[-1]}",
                  value=summary[calibrations[-1]]["mean_abs_coverage_gap"],
                  split="each series' own protocol (forecast_dev): the test part's rolling origins",
                  data="development series: " + ", ".join(datasets), source_record="+".join(sources), variant=variant,
                  calibrations=calibrations, summary=summary, runs=runs,
                  total_seconds=round(time.monotonic() - start, 1),
                  note="the same bundles under each calibration; the point forecasts change only with +median or "
                       "+medianpoint")


def _best_peers(records: Iterable[str]) -> dict[str, float]:
    """Each development set's best peer MASE, as the `records` (forecast_dev records' names) hold it."""
    return {d: run["best_peer_mase"] for one in records
            for d, run in json.loads((RESULTS / f"{one}.json").read_text())["runs"].items()}


def _runs_of(sources: list[str], variant: str, datasets: Iterable[str]) -> dict[str, dict]:
    """The forecast_dev runs of `variant` on each of `datasets`, each from the first of the `sources` that holds it."""
    held = [json.loads((RESULTS / f"{source}.json").read_text())["runs"] for source in sources]
    runs = {d: next((one[d][variant] for one in held if variant in one.get(d, {})), None) for d in datasets}
    missing = [d for d, run in runs.items() if run is None]
    if missing:
        raise SystemExit(f"no run of {variant} on {', '.join(missing)} in {', '.join(sources)}")
    return runs


def _bundle_of(sources: list[str], dataset: str, variant: str) -> tuple[Path, Path]:
    """The development bundle of `dataset` and its table, from the first of the `sources` records that holds it."""
    outs = [ROOT / "benchmarks" / "runs" / source / dataset / variant for source in sources]
    out = next((one for one in outs if (one / "auto" / "bundle").is_dir()), None)
    if out is None:
        raise SystemExit(f"no bundle of {dataset} in {', '.join(map(str, outs))}: run forecast_dev --record "
                         f"{sources[0]} --variants {variant} --datasets {dataset} first")
    return out / "auto" / "bundle", out / f"{dataset}.csv"


def forecast_pool(pooled: list[str], datasets: list[str], name: str) -> dict:
    """Several records' development bundles (`pooled`: RECORD[+RECORD]:VARIANT, ...; each a search along its own path,
    e.g. one seed each): each alone (its twelve-set geometric mean of test MASE / the best peer's, its mean coverage
    gap and its longest search and refit, from its record) and their geometric mean, a typical one of them: one side
    of a decision rule measured over seeds. And a diagnostic: their point forecasts combined by their median at every
    point (MASE only: a pooled band has no calibration), what pooling the searches would give."""
    start, runs = time.monotonic(), {}
    sources = {one: (one.split(":")[0].split("+"), one.split(":")[1]) for one in pooled}  # (records, variant)
    peers = _best_peers(record_name for records, _ in sources.values() for record_name in records)
    recorded = {one: _runs_of(records, variant, datasets) for one, (records, variant) in sources.items()}
    for dataset in datasets:
        panel, points = load_panel(dataset), {}
        unbanded = [None] * len(panel)
        for one, (records, variant) in sources.items():
            bundle, table = _bundle_of(records, dataset, variant)
            points[one] = _forecasts(bundle, dataset, panel, table)[0]  # each series' (origins, horizon)
        median = [np.median(np.stack(series), axis=0) for series in zip(*points.values(), strict=True)]
        runs[dataset] = {"best_peer_mase": peers[dataset],
                         "mase": {one: _score(panel, p, unbanded)["mase"] for one, p in points.items()},
                         "mase_pooled_median": _score(panel, median, unbanded)["mase"]}
    alone = {one: _geometric_mean(r["mase"][one] / r["best_peer_mase"] for r in runs.values()) for one in pooled}
    gaps = {one: _coverage_gap(run["interval_coverage_10_90"] for run in sets.values())
            for one, sets in recorded.items()}
    summary = {"geometric_mean_relative_mase": {
        **alone, "pooled_median": _geometric_mean(r["mase_pooled_median"] / r["best_peer_mase"] for r in runs.values()),
        "each_alone_geometric_mean": _geometric_mean(alone.values())},  # a typical one of them
        "mean_abs_coverage_gap": {**gaps, "each_alone_mean": round(float(np.mean(list(gaps.values()))), 4)},
        "longest_search_and_refit_seconds": {one: max(round(run["search_seconds"] + run["refit_seconds"], 1)
                                                      for run in sets.values()) for one, sets in recorded.items()}}
    return record(name, metric="geometric_mean_test_mase_relative_to_best_peer_pooled",
                  value=summary["geometric_mean_relative_mase"]["pooled_median"],
                  split="each series' own protocol (forecast_dev): the test part's rolling origins",
                  data="development series: " + ", ".join(datasets), pooled=pooled, summary=summary, runs=runs,
                  total_seconds=round(time.monotonic() - start, 1),
                  note="each record alone as it holds it; the pooled median (a diagnostic, no decision rides on "
                       "it): the bundles' point forecasts as they are, combined by their median per point")


def forecast_compare(sources: list[str], variant: str, against: list[str], name: str) -> dict:
    """Record the variant `variant` of the `sources` records (their sets together) against other records' variant
    (`against`: RECORD:VARIANT[:SET,SET...], ...; each set taken from the first that holds it, among the SETs named)
    on the same development sets, without training anything: the geometric mean of test MASE / the best peer's and
    the coverage gaps of the bands both sides hold, each over the same sets (a decision rule's two sides)."""
    start = time.monotonic()
    mine = {d: run for one in sources for d, run in json.loads((RESULTS / f"{one}.json").read_text())["runs"].items()}
    theirs = {}
    for one in against:
        other, other_variant, *named = one.split(":")
        for dataset, run in json.loads((RESULTS / f"{other}.json").read_text())["runs"].items():
            if not named or dataset in named[0].split(","):
                theirs.setdefault(dataset, run[other_variant])
    missing = sorted(set(mine) - set(theirs))
    if missing:
        raise SystemExit(f"forecast_compare: no record in --against holds {', '.join(missing)}")
    source = "+".join(sources)
    sides = {f"{source}:{variant}": {d: mine[d][variant] for d in mine},
             " + ".join(against): {d: theirs[d] for d in mine}}
    keys = [k for k in ("online", "offline", "adaptive") if all(f"interval_coverage_10_90_{k}" in run
                                                                 for side in sides.values() for run in side.values())]
    summary = {side: {"geometric_mean_relative_mase": _geometric_mean(run["relative_to_best_peer"]
                                                                      for run in runs.values()),
        **{f"mean_abs_coverage_gap_{k}": _coverage_gap(run[f"interval_coverage_10_90_{k}"] for run in runs.values())
           for k in keys}} for side, runs in sides.items()}
    per_set = {d: {side: {"relative_to_best_peer": runs[d]["relative_to_best_peer"], "transform": runs[d]["transform"]}
                   for side, runs in sides.items()} for d in mine}
    return record(name, metric="geometric_mean_test_mase_relative_to_best_peer",
                  value=summary[f"{source}:{variant}"]["geometric_mean_relative_mase"],
                  split="each series' own protocol (forecast_dev): the test part's rolling origins",
                  data="development series: " + ", ".join(mine), summary=summary, runs=per_set,
                  total_seconds=round(time.monotonic() - start, 1),
                  note="two records' runs on the same development sets, compared without training")


# forecast_precision's fixed configurations: a recipe's network on a development set (no search: equal work)
PRECISION_SETS = (("airpassengers", "recipes/forecast_co2.yaml"), ("lynx", AUTO_RECIPE),
                  ("macro_history_panel", AUTO_RECIPE))
PRECISIONS = ("32-true", "bf16-mixed")


def forecast_precision(rounds: int, name: str) -> dict:
    """The wall time of `seq2text fit` on fixed configurations (PRECISION_SETS) in 32-true and in bf16-mixed,
    alternating (ABBA...) in one run on a CPU with native bf16, and each fit's validation MASE: whether the
    forecaster's small networks gain anything from bf16 there. Medians over `rounds` fits each; the ratio
    bf16-mixed / 32-true per set is the figure (below 1: bf16 faster)."""
    from seq2text.hardware import cpu_bf16

    native, reason = cpu_bf16()
    if not native:
        raise SystemExit(f"forecast_precision compares bf16-mixed with 32-true where bf16 is native; here: {reason}")
    start, runs = time.monotonic(), {}
    for dataset, recipe in PRECISION_SETS:
        panel, out = load_panel(dataset), ROOT / "benchmarks" / "runs" / name / dataset
        table = export(panel, dataset, out / f"{dataset}.csv")
        extra = _protocol_args(dataset, panel[0], table, len(panel) > 1)
        walls, valid = {p: [] for p in PRECISIONS}, {p: [] for p in PRECISIONS}
        for r in range(rounds):
            for precision in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
                where = out / f"{precision}_{r}"
                walls[precision].append(round(fit_recipe(recipe, where, [*extra, "--trainer.precision", precision]), 2))
                metrics = json.loads((where / "bundle" / "metrics.json").read_text())
                valid[precision].append(round(metrics["val/mase"], 4))
        medians = {p: float(np.median(walls[p])) for p in PRECISIONS}
        runs[dataset] = {"recipe": recipe, "wall_seconds": walls, "valid_mase": valid,
                         "median_wall_seconds": medians,
                         "bf16_over_fp32_wall": round(medians["bf16-mixed"] / medians["32-true"], 3)}
    return record(name, metric="median_wall_ratio_bf16_mixed_over_32_true",
                  value=round(float(np.median([r["bf16_over_fp32_wall"] for r in runs.values()])), 3),
                  split="training + validation of each development set (its test part is not read)",
                  data="development sets: " + ", ".join(d for d, _ in PRECISION_SETS), rounds=rounds, runs=runs,
                  precision="32-true and bf16-mixed (alternating)", bf16=reason,
                  total_seconds=round(time.monotonic() - start, 1),
                  note="each fit is a `seq2text fit` process (start-up included: what a user waits for); the "
                       "configurations are fixed, so both precisions do the same work")


def _geometric_mean(ratios: Iterable[float]) -> float:
    """The geometric mean of MASE ratios (to the best peer's), rounded as the records hold it."""
    return round(float(np.exp(np.mean(np.log(list(ratios))))), 4)


def _coverage_gap(coverages: Iterable[float]) -> float:
    """The mean distance of the bands' coverages from their nominal 80 %."""
    return round(float(np.mean([abs(c - 0.8) for c in coverages])), 4)


def _variant_args(options: list[str], dataset: str, out: Path) -> list[str]:
    """The command-line words of a forecast_dev variant's options (`-local`, `-steps500`, ...; `-trialsN` is the trial
    limit, not a word). `-portfolio` starts from PORTFOLIO without `dataset`'s own configuration (leave one out: the
    portfolio is judged on series that did not choose it), written to `out`/start.json."""
    from seq2text.tasks.tuning import PORTFOLIO

    words = []
    for option in options:
        name = option.rstrip("0123456789")
        if name not in DEV_VARIANT_OPTIONS and name != "trials":
            raise SystemExit(f"unknown variant option {option!r}; known: {', '.join(DEV_VARIANT_OPTIONS)}, trialsN")
        number = option[len(name):] if name != "trials" else ""  # steps500 → 500 after --trainer.min_steps
        number = str(int(number) / 100) if name in PERCENT_OPTIONS and number else number
        words += [*DEV_VARIANT_OPTIONS.get(name, []), *([number] if number else [])]
        if name == "portfolio":
            out.mkdir(parents=True, exist_ok=True)
            (out / "start.json").write_text(json.dumps({k: v for k, v in PORTFOLIO.items() if k != dataset}, indent=1))
            words.append(str(out / "start.json"))
    return words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", help="forecast_co2, forecast_sunspots, forecast_macro_panel, or export")
    parser.add_argument("--trials", type=int, default=TRIALS, help="tuning trials (the same for every dataset)")
    parser.add_argument("--budget", default=BUDGET, help="tuning wall-clock cap (the same for every dataset)")
    parser.add_argument("--peers", nargs="+", default=list(PANEL_PEERS), choices=["seasonal_naive", *PEERS])
    parser.add_argument("--no-examples", action="store_true", help="skip the hand-tuned recipes (co2, sunspots)")
    parser.add_argument("--folds", type=int, default=FOLDS, help="cross-validation blocks of the search")
    parser.add_argument("--members", type=int, default=MEMBERS, help="configurations the bundle averages")
    parser.add_argument("--calibration", type=int, default=CALIBRATION, help="validation blocks the band calibrates on")
    parser.add_argument("--variants", nargs="+", default=["1x1", "3x1", "1x5", "3x5"],
                        help="forecast_dev: FOLDSxMEMBERS[cCALIBRATION] variants compared")
    parser.add_argument("--datasets", nargs="+", default=[*DEV_DATASETS, *DEV_PANELS],
                        choices=[*DEV_DATASETS, *DEV_PANELS], help="forecast_dev: the development series and panels")
    parser.add_argument("--record", default="forecast_dev",
                        help="forecast_dev: the record's name; forecast_<dataset>: the record's name if not its own")
    parser.add_argument("--source", default="forecast_dev_defaults",
                        help="forecast_rescore: the forecast_dev record whose bundles are scored again (A+B: several); "
                        "forecast_compare: the record (A+B: several, their sets together)")
    parser.add_argument("--against", nargs="+", help="forecast_compare: RECORD:VARIANT[:SET,SET...] (several: "
                        "each set from the first that holds it, among its SETs if named), against --source's variant; "
                        "forecast_pool: RECORD[+RECORD]:VARIANT, the records pooled")
    parser.add_argument("--calibrations", nargs="+", default=["online", "adapt0.01", "adapt0.05"],
                        help="forecast_rescore: the calibrations compared (online, offline, adaptR; "
                        "+decayK, +origin, +series, +median, +medianpoint: see _forecasts)")
    parser.add_argument("--rounds", type=int, default=4, help="forecast_precision: fits per precision")
    args, rest = parser.parse_known_args()
    if args.benchmark == "export":
        if len(rest) != 2:
            raise SystemExit("usage: python benchmarks/forecast.py export DATASET PATH")
        print(export(load_panel(rest[0]), rest[0], Path(rest[1])))
    elif args.benchmark == "forecast_dev" and not rest:
        forecast_dev(args.trials, args.budget, args.variants, args.datasets, args.record)
    elif args.benchmark == "forecast_rescore" and not rest:
        forecast_rescore(args.source.split("+"), args.variants[0], args.calibrations, args.datasets, args.record)
    elif args.benchmark == "forecast_precision" and not rest:
        forecast_precision(args.rounds, args.record if args.record != "forecast_dev" else "forecast_precision")
    elif args.benchmark == "forecast_pool" and args.against and not rest:
        forecast_pool(args.against, args.datasets, args.record)
    elif args.benchmark == "forecast_compare" and args.against and not rest:
        forecast_compare(args.source.split("+"), args.variants[0], args.against, args.record)
    elif args.benchmark.removeprefix("forecast_") in (*DATASETS, *PANELS) and not rest:
        forecast_benchmark(args.benchmark.removeprefix("forecast_"), args.trials, args.budget, args.peers,
                           not args.no_examples, args.folds, args.members, args.calibration,
                           None if args.record == "forecast_dev" else args.record)
    else:
        sys.exit(f"unknown benchmark or arguments {[args.benchmark, *rest]}; use forecast_co2, forecast_sunspots, "
                 "forecast_macro_panel or export")


if __name__ == "__main__":
    main()
