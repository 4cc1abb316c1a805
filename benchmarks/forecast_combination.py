"""Would a fixed combination with the classical models close the gap? Measured on the development series only.

    pip install -r benchmarks/peers.txt 'seq2text[tune]'
    python benchmarks/forecast_combination.py                    # writes benchmarks/results/forecast_combination.json

For each development series (`forecast_peers.DEV_DATASETS`, never co2, sunspots or the macro panel), seq2text's
automatic configuration with the default settings (the same command as `forecast.py`'s headline) forecasts every test
origin, and so do statsforecast's AutoARIMA and AutoETS, fitted on train + valid. Scored by the same
`forecast_peers.scores` (MASE against the training part's seasonal-naive error):

- `seq2text`, `autoarima`, `autoets`: each alone;
- `mean_classical`: the mean of AutoARIMA's and AutoETS's forecasts;
- `mean_all`: the mean of seq2text's, AutoARIMA's and AutoETS's forecasts, equal weights.

The combinations are fixed in advance (equal weights, no choice by any score), so nothing here is chosen on the test
part; the record says whether a combination is worth building into the tuner, to be checked on the validation part.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as forecast.py: tiny models, one thread per process

import time  # noqa: E402

import numpy as np  # noqa: E402
from common import ROOT, record  # noqa: E402
from forecast import CALIBRATION, FOLDS, MEMBERS, TRIALS, _auto, _forecasts  # noqa: E402
from forecast_peers import DEV_DATASETS, _forecast, load_panel, rolling_windows, scores  # noqa: E402

BUDGET = "10m"
CLASSICAL = ("autoarima", "autoets")


def _mase(series: object, predictions: np.ndarray) -> float:
    result = scores(series.values, predictions, rolling_windows(series), series.horizon, series.season,
                    series.train_end)
    return round(result["mase"], 4)


def combine(name: str) -> dict:
    """One development series: each forecaster alone and the fixed combinations, by test MASE."""
    panel = load_panel(name)
    series = panel[0]
    out = ROOT / "benchmarks" / "runs" / "forecast_combination" / name
    auto = _auto(name, panel, out, TRIALS, BUDGET, FOLDS, MEMBERS, CALIBRATION)
    points, _ = _forecasts(out / "auto" / "bundle", name, panel, out / f"{name}.csv")  # the table _auto wrote
    forecasts = {"seq2text": points[0]}
    forecasts.update({peer: _forecast(series, rolling_windows(series), peer)[0] for peer in CLASSICAL})
    forecasts["mean_classical"] = np.mean([forecasts[p] for p in CLASSICAL], axis=0)
    forecasts["mean_all"] = np.mean([forecasts[p] for p in ("seq2text", *CLASSICAL)], axis=0)
    mase = {key: _mase(series, value) for key, value in forecasts.items()}
    return {"mase": mase, "best": min(mase, key=mase.get), "seq2text_check": auto["mase"]}


def main() -> None:
    start = time.monotonic()
    runs = {name: combine(name) for name in DEV_DATASETS}
    keys = list(next(iter(runs.values()))["mase"])
    geometric = {key: round(float(np.exp(np.mean([np.log(r["mase"][key]) for r in runs.values()]))), 4)
                 for key in keys}
    record("forecast_combination", metric="geometric_mean_test_mase_mean_all", value=geometric["mean_all"],
           split="each development series' own protocol (forecast_peers.DEV_DATASETS): test the last test_size steps, "
                 "rolling origins × horizon; every model fitted on train + valid",
           data="development series: " + ", ".join(DEV_DATASETS), tune_trials=TRIALS, tune_budget=BUDGET,
           tune_folds=FOLDS, tune_members=MEMBERS, tune_calibration_folds=CALIBRATION,
           geometric_mean_mase=geometric, wins={key: sum(r["best"] == key for r in runs.values()) for key in keys},
           runs=runs, total_seconds=round(time.monotonic() - start, 1),
           note="fixed equal-weight combinations, chosen before the run: evidence for (or against) building a "
                "combination into the tuner, not a headline")


if __name__ == "__main__":
    main()
