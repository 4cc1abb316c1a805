"""Forecasting (issue 14): reading numeric tables, chronological splits without leakage, the regressor and its
losses, forecast metrics, the task through the CLI, the bundle's Forecaster, and bad input."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import seq2text
from seq2text.cli import main
from seq2text.data.forecasting import SeriesDataModule, seasonal_naive
from seq2text.errors import ConfigError, DataError
from seq2text.nn.loss import regression_loss
from seq2text.nn.regressor import RegressorConfig, SequenceRegressor
from seq2text.predict.forecaster import Forecaster
from seq2text.predict.metrics import forecast_scores, forecast_sums
from seq2text.text.series import read_series, seasonal_scale
from tests.conftest import QUIET, fit

RECIPE = "forecast_co2.yaml"


def monthly(n: int = 180, seed: int = 0, ids: tuple[str, ...] = ()) -> pd.DataFrame:
    """Trend + yearly season + noise, month-start stamps; with `ids`, one such series per id, stacked."""
    frames = []
    for k, series_id in enumerate(ids or ("",)):
        rng = np.random.default_rng(seed + k)
        t = np.arange(n)
        value = 10 + k + 0.05 * t + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, n)
        frame = pd.DataFrame({"month": pd.date_range("2000-01-01", periods=n, freq="MS"), "load": value})
        if ids:
            frame.insert(0, "site", series_id)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


TINY = ["--data.init_args.time_column", "month", "--data.init_args.value_columns", "[load]",
        "--data.init_args.lookback", "24", "--data.init_args.horizon", "6", "--data.init_args.valid_size", "24",
        "--data.init_args.test_size", "24", "--data.init_args.batch_size", "16",
        "--model.init_args.network.hidden_size", "32", "--model.init_args.network.autoregressive", "24",
        "--model.init_args.optim.lr", "0.01", "--trainer.precision", "32", "--trainer.check_val_every_n_epoch", "10",
        *QUIET]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("series") / "load.csv"
    monthly().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def bundle(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit(RECIPE, tmp_path_factory.mktemp("forecaster"), "--data.init_args.path", str(table), *TINY,
               "--trainer.max_epochs", "30")


# ----------------------------------------------------------------------------------------------- reading
def test_splits_are_chronological_and_scales_see_only_the_training_part(table: Path) -> None:
    frame = monthly()
    dm = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=24, horizon=6,
                                     season=12, valid_size=24, test_size=24)
    leaked = frame.copy()
    leaked.loc[len(frame) - 48:, "load"] *= 100  # change the validation and test parts only
    other = SeriesDataModule.from_frame(leaked, time_column="month", value_columns=["load"], lookback=24, horizon=6,
                                        season=12, valid_size=24, test_size=24)
    assert dm.reading == other.reading  # the scales come from the training part alone
    train, other_train = dm.load_split("train"), other.load_split("train")
    assert torch.equal(train.arrays["input"], other_train.arrays["input"])
    assert torch.equal(train.arrays["target"], other_train.arrays["target"])
    assert len(train) == 180 - 48 - 24 - 6 + 1  # targets inside the training part
    assert len(dm.load_split("valid")) == 24 - 6 + 1 and len(dm.load_split("test")) == 24 - 6 + 1
    test = dm.load_split("test")  # rolling origins: the first test window forecasts the first test step
    first = test.arrays["target"][0, 0, 0] * test.arrays["scale"][0, 0] + test.arrays["last"][0, 0]
    assert float(first) == pytest.approx(frame["load"].iloc[180 - 24], rel=1e-5)


def test_recency_weights_halve_every_half_life_with_a_mean_of_one_per_series(table: Path, tmp_path: Path) -> None:
    """data.recency r: a training window's weight halves every r × the training part's steps, scaled to a mean of 1
    per series (a refit's training part is train + valid); evaluation windows weigh 1; the loss weighs by it."""
    from seq2text.tasks.forecasting import ForecastingTask

    options = {"time_column": "month", "value_columns": ["load"], "id_column": "site", "lookback": 24, "horizon": 6,
               "season": 12, "valid_size": 24, "test_size": 24}
    dm = SeriesDataModule.from_frame(monthly(ids=("a", "b")), recency=0.5, **options)
    train = dm.load_split("train")
    weights, series = train.arrays["weight"].double(), train.arrays["series"]
    first = weights[series == 0]
    assert len(first) == 103 and float(first.mean()) == pytest.approx(1.0)
    assert float(first[-1] / first[-67]) == pytest.approx(2.0)  # 66 steps = half of the 132-step training part
    assert torch.allclose(weights[series == 1], first)
    assert torch.equal(dm.load_split("valid").arrays["weight"], torch.ones(2 * 19))
    refit = dm.view("test").load_split("train").arrays["weight"].double()
    assert float(refit[:127][-1] / refit[:127][-79]) == pytest.approx(2.0)  # train + valid: 156 steps
    plain = SeriesDataModule.from_frame(monthly(ids=("a", "b")), **options).load_split("train")
    assert torch.equal(plain.arrays["weight"], torch.ones(len(plain)))
    auto = SeriesDataModule.from_frame(monthly(ids=("a", "b")), recency="auto", **options)  # a panel: PANEL_RECENCY
    assert torch.equal(auto.load_split("train").arrays["weight"], train.arrays["weight"])
    assert torch.equal(auto.view("valid", lookback=12).load_split("train").arrays["weight"],
                       dm.view("valid", lookback=12).load_split("train").arrays["weight"])
    single = {**options, "id_column": None}  # one series: none
    one = SeriesDataModule.from_frame(monthly(), recency="auto", **single).view("test").load_split("train")
    assert torch.equal(one.arrays["weight"], torch.ones(len(one)))
    task = ForecastingTask(input_size=1, output_size=1, output_steps=6)
    task.log = lambda *args, **kwargs: None
    task.global_mean = lambda total, count: total / count
    batch = train[list(range(8))]
    task.eval()  # no dropout: the two forward passes agree
    losses = task._loss(*task._predict(batch))  # (8, 6, 1)
    expected = (losses * batch.weight.view(-1, 1, 1)).sum() / losses.numel()
    assert torch.allclose(task.training_step(batch, 0), expected)
    for bad in (-1, "recent"):
        with pytest.raises(ConfigError, match="recency"):
            SeriesDataModule(recency=bad)
    for value in ("auto", "0.5"):  # a recipe's word and number both parse
        assert (fit(RECIPE, tmp_path / value, "--data.init_args.path", str(table), *TINY, "--data.init_args.recency",
                    value, "--trainer.max_epochs", "1") / "metrics.json").is_file()


def test_many_series_and_variables_from_a_dataframe() -> None:
    frame = monthly(ids=("a", "b"))
    frame["temp"] = np.cos(np.arange(len(frame)))
    dm = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load", "temp"], id_column="site",
                                     lookback=12, horizon=3, calendar=["month"], valid_size=0.1, test_size=0.1)
    assert set(dm.reading.scales) == {"a", "b"} and dm.reading.input_size == 2 + 2
    batch = dm.load_split("train")[[0, 1]]
    assert batch.input.shape == (2, 12, 4) and batch.target.shape == (2, 3, 2)


def test_seasonal_naive_and_forecast_scores_by_hand() -> None:
    values = np.arange(10, dtype=float)[:, None]  # (T, 1)
    assert seasonal_naive(values, 6, 5, 3)[:, 0].tolist() == [3, 4, 5, 3, 4]  # the last season repeated
    assert seasonal_scale(values, 2)[0] == 2.0
    actual, predicted = torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [0.0]])
    scores = forecast_scores(forecast_sums(actual, predicted, torch.tensor(2.0), torch.tensor([[1.0], [1.0]])))
    assert scores["mae"] == 1.5 and scores["rmse"] == pytest.approx(np.sqrt(2.5)) and scores["mase"] == 0.75
    assert scores["smape"] == pytest.approx((200 / 3 + 200) / 2) and scores["rel_mae_snaive"] == 3.0


def test_losses_by_hand() -> None:
    predicted, target = torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([3.0])
    pinball = regression_loss(predicted, target, "quantile", (0.1, 0.5, 0.9))
    assert float(pinball[0]) == pytest.approx((0.1 * 2 + 0.5 * 1 + 0.1 * 1) / 3)
    point = torch.tensor([[1.0]])
    assert float(regression_loss(point, target, "mse")[0]) == 4.0
    assert float(regression_loss(point, target, "mae")[0]) == 2.0
    assert float(regression_loss(point, target, "huber", huber_delta=1.0)[0]) == 1.5


def test_regressor_shapes_and_quantile_checks() -> None:
    net = SequenceRegressor(RegressorConfig(3, 2, 5, hidden_size=8, bidirectional=True, quantiles=(0.1, 0.5, 0.9)))
    out = net(torch.randn(4, 7, 3))
    assert out.shape == (4, 5, 2, 3) and torch.equal(net.point(out), out[..., 1])
    with pytest.raises(ValueError, match="include 0.5"):
        RegressorConfig(3, quantiles=(0.1, 0.9))


def test_linear_highway_adds_a_linear_forecast_of_each_variable_to_every_output() -> None:
    """LSTNet's autoregressive component: shared weights over the variables, the same shift for every quantile,
    zero at initialisation (the network alone), and refused when it reads beyond the input."""
    config = RegressorConfig(4, 2, 3, hidden_size=8, quantiles=(0.1, 0.5, 0.9), autoregressive=5)
    net, plain = SequenceRegressor(config), SequenceRegressor(replace(config, autoregressive=0))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("highway")})
    net.eval(), plain.eval()
    x = torch.randn(6, 7, 4)
    assert torch.equal(net(x), plain(x))  # zero-initialised
    with torch.no_grad():
        net.highway.weight.copy_(torch.randn(3, 5))
        net.highway.bias.copy_(torch.randn(3))
    expected = torch.einsum("bkv,hk->bhv", x[:, -5:, :2], net.highway.weight) + net.highway.bias[:, None]
    assert torch.allclose(net(x) - plain(x), expected.unsqueeze(-1).expand(6, 3, 2, 3), atol=1e-6)
    with pytest.raises(ValueError, match="reads 5 steps"):
        net(x[:, :4])
    with pytest.raises(ValueError, match="autoregressive=-1"):
        RegressorConfig(4, autoregressive=-1)


def test_a_damped_trend_baseline_is_added_under_every_output() -> None:
    """damping φ: step h adds the drift per step of the input's last trend_steps steps × (φ + … + φ^h), the same for
    every quantile, on top of what the network learns; φ = 1 extrapolates a straight line exactly."""
    config = RegressorConfig(2, 1, 4, num_layers=0, autoregressive=3, quantiles=(0.1, 0.5, 0.9), damping=0.5,
                             trend_steps=2)
    net = SequenceRegressor(config).eval()  # highway and constant zero: the baseline alone
    x = torch.randn(5, 6, 2)
    x[:, -1, 0] = 0.0  # the values are read relative to the last one
    drift = -x[:, -3, 0] / 2  # (5,)
    profile = torch.tensor([0.5, 0.75, 0.875, 0.9375])
    expected = (drift[:, None] * profile).view(5, 4, 1, 1).expand(5, 4, 1, 3)
    assert torch.allclose(net(x), expected, atol=1e-6)
    line = torch.arange(-5.0, 1.0).view(1, 6, 1) * 0.5  # a series rising 0.5 a step, read relative to its last value
    straight = SequenceRegressor(replace(config, damping=1.0, trend_steps=5)).eval()
    assert torch.allclose(straight(torch.cat([line, torch.zeros(1, 6, 1)], -1))[0, :, 0, 1],
                          torch.tensor([0.5, 1.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match="reads 3 steps"):
        net(x[:, -2:])
    for bad in ({"damping": 1.5, "trend_steps": 2}, {"damping": 0.9}):
        with pytest.raises(ValueError, match="damping="):
            RegressorConfig(2, **bad)


def test_a_seasonal_baseline_adds_the_seasonal_naive_forecast_under_every_output() -> None:
    """baseline seasonal: step h adds the input's value one season (or more) before it, as `seasonal_naive` forecasts
    it, the same for every quantile; a series that repeats its season exactly is forecast exactly by the baseline."""
    config = RegressorConfig(2, 1, 6, num_layers=0, autoregressive=2, quantiles=(0.1, 0.5, 0.9), baseline="seasonal",
                             season=4)
    net = SequenceRegressor(config).eval()  # highway and constant zero: the baseline alone
    x = torch.randn(3, 8, 2)
    expected = torch.from_numpy(np.stack([seasonal_naive(row[:, :1].numpy(), 8, 6, 4) for row in x]))  # (3, 6, 1)
    assert torch.allclose(net(x), expected.unsqueeze(-1).expand(3, 6, 1, 3))
    with pytest.raises(ValueError, match="one season"):
        net(x[:, -3:])
    with pytest.raises(ValueError, match="baseline="):
        RegressorConfig(2, baseline="seasonal")


def test_a_damped_forecaster_takes_its_trend_steps_from_the_data_and_ships_them(table: Path, tmp_path: Path) -> None:
    """network.damping with trend_steps left at 0: one season (12), at most lookback − 1; baseline seasonal with
    season 0: data.season; the bundle keeps both and reproduces the test run."""
    from seq2text.tasks.forecasting import trend_steps

    assert [trend_steps(*args) for args in ((12, 6, 24), (12, 6, 10), (1, 6, 24), (1, 6, 2))] == [12, 9, 6, 1]
    bundle = fit(RECIPE, tmp_path, "--data.init_args.path", str(table), *TINY, "--model.init_args.network.damping",
                 "0.9", "--model.init_args.network.baseline", "seasonal", "--trainer.max_epochs", "3")
    forecaster = seq2text.load(bundle)
    assert (forecaster.net.config.damping, forecaster.net.config.trend_steps) == (0.9, 12)
    assert (forecaster.net.config.baseline, forecaster.net.config.season) == ("seasonal", 12)  # data.season
    frame, errors = pd.read_csv(table), []
    for origin in range(len(frame) - 24, len(frame) - 6 + 1):
        future = forecaster.forecast(frame.iloc[:origin])
        errors.append(np.abs(future["load"].to_numpy() - frame["load"].iloc[origin: origin + 6].to_numpy()))
    assert np.mean(errors) == pytest.approx(json.loads((bundle / "metrics.json").read_text())["test/mae"], rel=1e-4)


# ----------------------------------------------------------------------------------------------- task + bundle
def test_fit_beats_seasonal_naive_and_the_forecaster_reproduces_the_test_run(bundle: Path, table: Path) -> None:
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert metrics["test/mase"] < 1 and metrics["test/rel_mae_snaive"] < 1, metrics
    forecaster = seq2text.load(bundle)
    assert isinstance(forecaster, seq2text.Forecaster) and forecaster.quantiles == (0.1, 0.5, 0.9)
    frame = pd.read_csv(table)
    errors = []
    for origin in range(len(frame) - 24, len(frame) - 6 + 1):  # the test part's rolling origins
        future = forecaster.forecast(frame.iloc[:origin])
        assert list(future.columns) == ["month", "load", "load_q10", "load_q90"]
        assert future["month"].iloc[0] == pd.Timestamp(frame["month"].iloc[origin])
        errors.append(np.abs(future["load"].to_numpy() - frame["load"].iloc[origin: origin + 6].to_numpy()))
    assert np.mean(errors) == pytest.approx(metrics["test/mae"], rel=1e-4)
    assert (future["load_q10"] <= future["load"]).mean() > 0.5 and (future["load"] <= future["load_q90"]).mean() > 0.5


def test_forecast_command_writes_csv(bundle: Path, table: Path, tmp_path: Path) -> None:
    out = tmp_path / "future.csv"
    assert main(["forecast", "--model", str(bundle), "--input", str(table), "--horizon", "3", "--output",
                 str(out)]) == 0
    future = pd.read_csv(out)
    assert len(future) == 3 and future["month"].iloc[0] == "2015-01-01"


# ----------------------------------------------------------------------------------------------- bad input
def _write(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def _cases(root: Path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """name: (the fit's extra arguments or a whole command, what stderr must say)."""
    base = monthly()
    nan, text, unsorted, dup, gaps = base.copy(), base.astype({"load": object}), base.copy(), base.copy(), base.copy()
    nan.loc[30, "load"] = np.nan
    text.loc[40, "load"] = "n/a"
    unsorted.loc[[50, 51]] = unsorted.loc[[51, 50]].to_numpy()
    dup.loc[60, "month"] = dup.loc[59, "month"]
    gaps = gaps.drop(index=70)
    (root / "notes.txt").write_text("the load was high\n")
    return {
        "NaN cell": (["--data.init_args.path", _write(root / "nan.csv", nan)], ("row 31", "empty", "interpolate")),
        "non-numeric cell": (["--data.init_args.path", _write(root / "text.csv", text)], ("row 41", "'n/a'",
                                                                                          "not a number")),
        "unsorted timestamps": (["--data.init_args.path", _write(root / "unsorted.csv", unsorted)],
                                ("row 52", "sort the table by time")),
        "duplicated timestamps": (["--data.init_args.path", _write(root / "dup.csv", dup)], ("row 61", "repeats")),
        "irregular spacing": (["--data.init_args.path", _write(root / "gaps.csv", gaps)], ("irregular", "resample")),
        "lookback longer than the series": (["--data.init_args.path", _write(root / "ok.csv", base),
                                             "--data.init_args.lookback", "400"], ("shorter than", "lookback")),
        "horizon 0": (["--data.init_args.path", str(root / "ok.csv"), "--data.init_args.horizon", "0"],
                      ("horizon=0",)),
        "a text file": (["--data.init_args.path", str(root / "notes.txt")], ("not a csv", "classifier")),
        "missing column": (["--data.init_args.path", str(root / "ok.csv"), "--data.init_args.value_columns",
                            "[demand]"], ("no column", "demand", "value_columns")),
    }


CASE_NAMES = ["NaN cell", "non-numeric cell", "unsorted timestamps", "duplicated timestamps", "irregular spacing",
              "lookback longer than the series", "horizon 0", "a text file", "missing column"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_tables_get_a_clear_error_and_nothing_is_written(name: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    extra, expect = _cases(tmp_path)[name]
    capsys.readouterr()
    argv = ["fit", "--config", str(Path(__file__).parent.parent / "recipes" / RECIPE), *TINY,
            "--trainer.max_epochs", "1", "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
            "--bundle", str(tmp_path / "never"), *extra]
    try:
        code = main(argv)
    except SystemExit as done:
        code = done.code
    err = capsys.readouterr().err
    assert code not in (0, None) and "Traceback" not in err
    for text in expect:
        assert text.lower() in err.lower(), f"{text!r} not in: {err[-1500:]}"
    assert not (tmp_path / "never").exists() and not list(tmp_path.rglob("*.ckpt"))


def test_prediction_refuses_what_the_model_cannot_read(bundle: Path, table: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    forecaster = seq2text.load(bundle)
    frame = pd.read_csv(table)
    with pytest.raises(DataError, match="reads 24 \\(lookback\\)"):
        forecaster.forecast(frame.iloc[:10])
    weekly = frame.iloc[:40].assign(month=pd.date_range("2000-01-03", periods=40, freq="W-MON"))
    with pytest.raises(DataError, match="trained on steps of MS"):
        forecaster.forecast(weekly)
    with pytest.raises(ConfigError, match="1 to 6 steps"):
        forecaster.forecast(frame, horizon=7)
    with pytest.raises(seq2text.BundleError, match="holds a forecasting model, not a translation model"):
        seq2text.Translator.load(bundle)
    monkey_stdin = sys.stdin
    try:
        assert main(["translate", "--model", str(bundle)]) == 1
    finally:
        sys.stdin = monkey_stdin
    assert "holds a forecasting model" in capsys.readouterr().err
    assert read_series(table, "month", ["load"])[0].values.shape == (180, 1)


@pytest.mark.parametrize("recipe", ["forecast_co2.yaml", "forecast_sunspots.yaml", "forecast_auto.yaml",
                                    "imdb_rating.yaml"])
def test_recipes_parse(recipe: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(Path(__file__).parent.parent / "recipes" / recipe), "--print_config"])
    assert done.value.code in (0, None) and "class_path: seq2text.tasks." in capsys.readouterr().out


def test_many_series_from_parquet_through_fit_and_forecast(tmp_path: Path) -> None:
    frame = monthly(120, ids=("north", "south"))
    frame["temp"] = np.cos(np.arange(len(frame)) / 3)
    table = tmp_path / "sites.parquet"
    frame.to_parquet(table)
    bundle = fit(RECIPE, tmp_path, "--data.init_args.path", str(table), *TINY, "--data.init_args.id_column", "site",
                 "--data.init_args.value_columns", "[load, temp]", "--data.init_args.lookback", "12",
                 "--model.init_args.network.autoregressive", "12",
                 "--data.init_args.valid_size", "12", "--data.init_args.test_size", "12", "--trainer.max_epochs", "2")
    forecaster = seq2text.load(bundle)
    assert set(forecaster.reading.scales) == {"north", "south"}
    future = forecaster.forecast(frame[frame["site"] == "south"].iloc[:60], horizon=2)
    assert list(future["site"]) == ["south", "south"] and {"load", "temp", "load_q90", "temp_q10"} <= set(future)
    assert future["month"].iloc[0] == pd.Timestamp("2005-01-01")


def test_an_ensemble_averages_its_members(bundle: Path, table: Path, tmp_path: Path) -> None:
    second = fit(RECIPE, tmp_path, "--data.init_args.path", str(table), *TINY, "--trainer.max_epochs", "3",
                 "--seed_everything", "7")
    ensemble = seq2text.load([bundle, second])
    assert isinstance(ensemble, seq2text.ForecasterEnsemble)
    frame = pd.read_csv(table).iloc[:100]
    members = [seq2text.load(path).forecast(frame) for path in (bundle, second)]
    together = ensemble.forecast(frame)
    for column in ("load", "load_q10", "load_q90"):
        assert np.allclose(together[column], (members[0][column] + members[1][column]) / 2)
    assert list(together["month"]) == list(members[0]["month"])
    with pytest.raises(seq2text.BundleError, match="ensemble member 1"):
        seq2text.ForecasterEnsemble.load([bundle, tmp_path / "nowhere"])


def test_the_forecast_endpoint_serves_the_forecaster(bundle: Path, table: Path) -> None:
    from fastapi.testclient import TestClient

    from seq2text.serving.server import ServeConfig, create_app

    forecaster = seq2text.load(bundle)
    frame = pd.read_csv(table)
    history = json.loads(frame.to_json(orient="records"))
    with TestClient(create_app(forecaster, ServeConfig())) as client:
        served = client.post("/forecast", json={"history": history, "horizon": 3})
        short = client.post("/forecast", json={"history": history[:10]})
        assert client.get("/info").json()["routes"] == ["/health", "/info", "/forecast"]
    assert served.status_code == 200
    expected = forecaster.forecast(frame, horizon=3)
    rows = served.json()["forecast"]
    assert len(rows) == 3 and [r["load"] for r in rows] == pytest.approx(expected["load"].tolist())
    assert short.status_code == 422 and "lookback" in short.json()["error"]


# ----------------------------------------------------------------------------------------------- issue 30: tuning
needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None and not os.environ.get("CI"),
                                  reason="optuna is not installed (pip install seq2text[tune]); CI always runs these")
AUTO = "forecast_auto.yaml"
TUNE_TINY = ["--data.init_args.time_column", "month", "--data.init_args.value_columns", "[load]",
             "--data.init_args.valid_size", "30", "--data.init_args.test_size", "24", "--data.init_args.horizon", "6",
             "--data.init_args.season", "12", "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1",
             "--trainer.precision", "32", *QUIET]


def _tiny_tuning(frame: pd.DataFrame, folds: int = 3, calibration_folds: int = 3, trials: int = 2,
                 start: tuple[dict, ...] = (), transform: str = "rule", seed: int = 3, decay: float = 0.0) -> dict:
    """`trials` trials (two) of two epochs on `frame` (valid 30, test 24 steps), straight through the library; with
    `transform` validation, the data's transform `auto` and the search choosing it."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import TrialSettings, TuningBudget, tune_forecaster

    data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], horizon=6, season=12,
                                       valid_size=30, test_size=24, batch_size=32,
                                       transform="auto" if transform == "validation" else "none")
    settings = TrialSettings(searches=1, max_epochs=2, check_every=1, precision="32-true", folds=folds,
                             calibration_folds=calibration_folds, start=start, transform=transform, decay=decay)
    result = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=trials, seed=seed), settings,
                             log=lambda _: None)
    return result.record


@needs_optuna
def test_tuning_writes_one_bundle_with_the_search_record_and_a_calibrated_band(table: Path, tmp_path: Path) -> None:
    lightning = logging.getLogger("pytorch_lightning")
    level = lightning.level
    bundle = fit(AUTO, tmp_path, "--data.init_args.path", str(table), *TUNE_TINY, "--tune_trials", "2",
                 "--tune_searches", "1")  # one search: its record and bundle below (the default pools three)
    assert lightning.level == level  # quieted for the search only: later fits in this process log as before
    metrics = json.loads((bundle / "metrics.json").read_text())
    search = metrics["search"]
    assert len(search["trials"]) == 2 and search["valid_mase"] == min(t["valid_mase"] for t in search["trials"])
    assert "linear" not in search["space"]["rnn_type"]  # the space it searched: the linear cell is off by default
    assert "recency" not in search["space"] and "dropout" not in search["space"]  # and so are these two
    assert set(search["chosen"]) >= {"lookback", "hidden_size", "num_layers", "rnn_type", "highway", "normalize",
                                     "lr", "loss"} and search["budget"] == {"seconds": None, "trials": 2, "seed": 1234}
    assert {"test/mase", "test/coverage"} <= set(metrics) and metrics["val/mase"] == search["ensemble"]["valid_mase"]
    assert metrics["precision"] == "32-true" and metrics["precision_requested"] == "32-true"  # the auto recipe's
    assert [m["trial"] for m in search["ensemble"]["members"]] == sorted(
        (0, 1), key=lambda n: search["trials"][n]["valid_mase"])  # both trials, the best first
    config = json.loads((bundle / "config.json").read_text())
    assert config["calibration"]["band"] == [0.1, 0.9] and len(config["calibration"]["offsets"]) == 6
    assert config["calibration"]["units"] == "series" and len(config["members"]) == 1
    assert config["calibration"]["online"] is True and list(config["calibration"]["fit_end"]) == [""]  # the default
    assert len(config["calibration"]["scores"]) == config["calibration"]["windows"] * 6
    forecaster = seq2text.load(bundle)
    assert forecaster.quantiles == (0.1, 0.5, 0.9) and len(forecaster.members) == 2
    history = pd.read_csv(table)
    future = forecaster.forecast(history)
    assert (future["load_q10"] <= future["load"]).all() and (future["load"] <= future["load_q90"]).all()
    alone = [Forecaster(net, reading).forecast(history)["load"] for net, reading in forecaster.members]
    assert config["combine"] == "median" and forecaster.combine == "median"  # the default (of two: their mean)
    assert np.allclose(future["load"], np.median(alone, axis=0), atol=1e-4)  # the members' median point forecast
    from seq2text.bundles.compression import compress_bundle

    for kind in ("fp16", "int8"):  # every member's weights compressed and read back
        smaller = seq2text.load(compress_bundle(bundle, tmp_path / kind, kind))
        assert len(smaller.members) == 2
        assert np.allclose(smaller.forecast(history)["load"], future["load"], rtol=0.05, atol=0.05)


@needs_optuna
def test_a_tuned_bundle_of_a_growing_series_reads_logs_and_forecasts_in_its_units(tmp_path: Path) -> None:
    """The auto recipe's transform (auto): a series whose swing grows with its level is read in logs by every trial
    and member; the bundle names the power, and `forecast` returns the series' units, its band around the point.
    The command's default pools three searches, side by side on the usable cores."""
    from seq2text.hardware import usable_cores

    t = np.arange(150.0)
    frame = monthly(150).assign(load=np.exp(t / 50) * (10 + 3 * np.sin(2 * np.pi * t / 12)))
    frame.to_csv(tmp_path / "growing.csv", index=False)
    bundle = fit(AUTO, tmp_path, "--data.init_args.path", str(tmp_path / "growing.csv"), *TUNE_TINY,
                 "--tune_trials", "2")
    config = json.loads((bundle / "config.json").read_text())
    assert config["reading"]["power"] == 0.0 and all(m["reading"]["power"] == 0.0 for m in config["members"])
    search = json.loads((bundle / "metrics.json").read_text())["search"]
    assert search["trial_settings"]["searches"] == 3 and len(search["further_searches"]) == 2
    assert search["trial_settings"]["workers"] == usable_cores()
    assert {m["search"] for m in search["ensemble"]["members"]} == {0, 1, 2}
    future = seq2text.load(bundle).forecast(frame)
    assert (future["load_q10"] <= future["load"]).all() and (future["load"] <= future["load_q90"]).all()
    assert 0.3 * frame["load"].iloc[-12:].mean() < future["load"].mean() < 3 * frame["load"].iloc[-12:].mean()


@needs_optuna
def test_the_search_chooses_the_transform_in_the_values_as_read_and_never_reads_the_test_part() -> None:
    """--tune_transform validation on a series whose swing grows with its level: the trials draw log or none, each
    scored by its validation MASE in the values as read (so the two compare); the members share the best trial's
    transform, which the calibration and refit read. Poisoned test values change none of it."""
    t = np.arange(150.0)
    frame = monthly(150).assign(load=np.exp(t / 50) * (10 + 3 * np.sin(2 * np.pi * t / 12)))
    poisoned = frame.copy()
    poisoned.loc[len(frame) - 24:, "load"] = 1e9
    clean, dirty = (_tiny_tuning(f, folds=1, calibration_folds=1, trials=6, transform="validation", seed=0)
                    for f in (frame, poisoned))
    drawn = [t["params"]["transform"] for t in clean["trials"]]
    assert set(drawn) == {"log", "none"}, drawn
    members = clean["ensemble"]["members"]
    assert {m["params"]["transform"] for m in members} == {clean["chosen"]["transform"]}
    kept = [t for t in clean["trials"] if t["state"] == "complete"]
    assert len(members) == sum(t["params"]["transform"] == clean["chosen"]["transform"] for t in kept) < len(kept)
    assert [t["valid_mase"] for t in clean["trials"]] == [t["valid_mase"] for t in dirty["trials"]]
    assert clean["chosen"] == dirty["chosen"] and clean["calibration"]["offsets"] == dirty["calibration"]["offsets"]


@needs_optuna
def test_each_member_refitted_from_several_seeds_joins_the_ensemble() -> None:
    """--tune_seeds 2: each of the ensemble's configurations trained twice (seeds 3 and 4): four networks for two
    configurations, the best configuration's first seed first; same configuration, other weights."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import TrialSettings, TuningBudget, tune_forecaster

    data = SeriesDataModule.from_frame(monthly(150), time_column="month", value_columns=["load"], horizon=6,
                                       season=12, valid_size=30, test_size=24, batch_size=32)
    settings = TrialSettings(searches=1, max_epochs=2, check_every=1, precision="32-true", seeds=2)
    result = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=2, seed=3), settings, log=lambda _: None)
    assert len(result.members) == 4 and len(result.task.members) == 3 and result.task is result.members[0][0]
    first, second = (task.net.state_dict() for task, _ in result.members[:2])
    assert first.keys() == second.keys() and any(not torch.equal(first[k], second[k]) for k in first)
    assert "2 seed(s)" in result.record["refit"] and len(result.record["ensemble"]["members"]) == 2
    with pytest.raises(ConfigError, match="seeds 0 .--tune_seeds.: give a positive whole number"):
        TrialSettings(seeds=0)


@needs_optuna
def test_a_decaying_band_keeps_its_half_life_in_steps() -> None:
    """--tune_decay 2 on a monthly series (season 12, horizon 6): the bundle's online band halves a score's weight
    every 2 × 12 steps of its age; the offsets at the fit are the validation part's, as without."""
    decaying = _tiny_tuning(monthly(150), folds=1, calibration_folds=1, trials=1, decay=2.0)
    plain = _tiny_tuning(monthly(150), folds=1, calibration_folds=1, trials=1)
    assert decaying["calibration"]["decay"] == 24 and "decay" not in plain["calibration"]
    assert decaying["calibration"]["offsets"] == plain["calibration"]["offsets"]


@needs_optuna
def test_a_panels_search_draws_the_recency_half_life_and_each_member_trains_with_its_own() -> None:
    """--tune_recency true: a panel's trials draw data.recency among SEARCH_SPACE["recency"], and each member is
    refitted with its own trial's half-life; one series' trials draw none (it keeps the data's)."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import SEARCH_SPACE, TrialSettings, TuningBudget, TuningResult, tune_forecaster

    settings = TrialSettings(searches=1, max_epochs=1, check_every=1, precision="32-true", recency=True, members=3)

    def tuned(frame: pd.DataFrame, id_column: str | None) -> TuningResult:
        data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], id_column=id_column,
                                           horizon=6, season=12, valid_size=24, test_size=12, recency="auto")
        return tune_forecaster(data, ForecastingTask(), TuningBudget(trials=5, seed=0), settings, log=lambda _: None)

    panel = tuned(monthly(100, ids=("north", "south")), "site")
    drawn = [t["params"]["recency"] for t in panel.record["trials"]]
    assert set(drawn) <= set(SEARCH_SPACE["recency"]) and len(set(drawn)) > 1, drawn
    assert panel.record["space"]["recency"] == list(SEARCH_SPACE["recency"])
    members = panel.record["ensemble"]["members"]
    assert [data._recency for _, data in panel.members] == [m["params"]["recency"] for m in members]
    single = tuned(monthly(100), None)
    assert all("recency" not in t["params"] for t in single.record["trials"])
    assert {data._recency for _, data in single.members} == {0.0}


@needs_optuna
def test_the_search_draws_the_dropout_when_asked_and_each_member_keeps_its_own() -> None:
    """--tune_dropout true: the trials draw network.dropout among SEARCH_SPACE["dropout"], and each member is refitted
    with its own trial's; by default every trial keeps the recipe's."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import SEARCH_SPACE, TrialSettings, TuningBudget, tune_forecaster

    def tuned(dropout: bool) -> tuple[dict, list[float]]:
        data = SeriesDataModule.from_frame(monthly(100), time_column="month", value_columns=["load"], horizon=6,
                                           season=12, valid_size=24, test_size=12)
        settings = TrialSettings(searches=1, max_epochs=1, check_every=1, precision="32-true", dropout=dropout,
                                 members=3)
        result = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=5, seed=0), settings,
                                 log=lambda _: None)
        return result.record, [task.network.dropout for task, _ in result.members]

    record, kept = tuned(True)
    drawn = [t["params"]["dropout"] for t in record["trials"]]
    assert set(drawn) <= set(SEARCH_SPACE["dropout"]) and len(set(drawn)) > 1, drawn
    assert record["space"]["dropout"] == list(SEARCH_SPACE["dropout"])
    assert kept == [m["params"]["dropout"] for m in record["ensemble"]["members"]]
    record, kept = tuned(False)
    assert "dropout" not in record["space"] and all("dropout" not in t["params"] for t in record["trials"])
    assert set(kept) == {ForecastingTask().network.dropout}


@needs_optuna
def test_the_compact_space_fixes_the_cell_the_depth_and_the_calendar() -> None:
    """--tune_space compact: every trial a one-layer GRU with the calendar feature (a monthly series has one), the
    record's space saying so; the rest drawn as before. The linear cell cannot be searched in it."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import SPACES, TrialSettings, TuningBudget, tune_forecaster

    data = SeriesDataModule.from_frame(monthly(100), time_column="month", value_columns=["load"], horizon=6,
                                       season=12, valid_size=24, test_size=12)
    settings = TrialSettings(searches=1, max_epochs=1, check_every=1, precision="32-true", space="compact", members=2)
    record = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=4, seed=0), settings,
                             log=lambda _: None).record
    assert all({k: t["params"][k] for k in SPACES["compact"]} == SPACES["compact"] for t in record["trials"])
    assert record["space"]["rnn_type"] == ["gru"] and record["space"]["num_layers"] == [1]
    assert len({t["params"]["hidden_size"] for t in record["trials"]}) > 1  # the rest still drawn
    with pytest.raises(ConfigError, match="--tune_space compact fixes it"):
        TrialSettings(space="compact", linear=True)
    with pytest.raises(ConfigError, match="give one of full, compact"):
        TrialSettings(space="tiny")
    with pytest.raises(ConfigError, match=r"sets \{'rnn_type': 'lstm'\}, which --tune_space compact fixes"):
        TrialSettings(space="compact", start=({"rnn_type": "lstm", "hidden_size": 32},))
    assert TrialSettings(space="compact", start=({"rnn_type": "gru", "hidden_size": 32},)).start  # agrees: fine


@needs_optuna
def test_pooled_searches_refit_the_best_of_each_from_its_own_seed() -> None:
    """--tune_searches 2: two searches with seeds seed and seed + 1 (the time cap shared), the best `members` of each
    refitted and combined, the best configuration first; the record keeps the second search's trials."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import TrialSettings, TuningBudget, search_budgets, tune_forecaster

    assert [(b.seed, b.seconds, b.trials) for b in search_budgets(TuningBudget(60.0, 4, seed=7), 3)] == \
        [(7, 20.0, 4), (8, 20.0, 4), (9, 20.0, 4)]
    data = SeriesDataModule.from_frame(monthly(100), time_column="month", value_columns=["load"], horizon=6,
                                       season=12, valid_size=24, test_size=12)
    settings = TrialSettings(max_epochs=1, check_every=1, precision="32-true", searches=2, members=2)
    result = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=3, seed=0), settings, log=lambda _: None)
    members = result.record["ensemble"]["members"]
    assert len(result.members) == 4 and sorted(m["search"] for m in members) == [0, 0, 1, 1]
    assert [m["valid_mase"] for m in members] == sorted(m["valid_mase"] for m in members)  # the best first
    assert result.record["valid_mase"] == members[0]["valid_mase"] and result.record["chosen"] == members[0]["params"]
    (further,) = result.record["further_searches"]
    assert further["seed"] == 1 and len(further["trials"]) == 3
    assert {m["trial"] for m in members if m["search"] == 1} <= {t["number"] for t in further["trials"]}
    with pytest.raises(ConfigError, match="searches 0 .--tune_searches.: give a positive whole number"):
        TrialSettings(searches=0)


@needs_optuna
def test_a_trial_shorter_than_the_validation_interval_is_still_scored_on_its_last_epoch() -> None:
    """trainer.max_epochs 2 with check_val_every_n_epoch 5 once left every trial unvalidated (each scored 1e6, the
    search blind); the trial now validates on a divisor of its epochs, its last epoch included."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import TrialSettings, TuningBudget, tune_forecaster, validation_every

    assert [validation_every(e, 5) for e in (30, 2, 12, 7, 1)] == [5, 2, 4, 1, 1]
    data = SeriesDataModule.from_frame(monthly(100), time_column="month", value_columns=["load"], horizon=6,
                                       season=12, valid_size=24, test_size=12)
    settings = TrialSettings(searches=1, max_epochs=2, check_every=5, precision="32-true", members=1)
    record = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=2, seed=0), settings,
                             log=lambda _: None).record
    assert all(t["valid_mase"] < 100 and len(t["valid_mase_history"][0]) == 1 for t in record["trials"])


@needs_optuna
def test_searches_side_by_side_in_worker_processes_give_the_same_ensemble() -> None:
    """--tune_workers 2: the two pooled searches, then the members' refits, run in two worker processes at once; each
    is seeded, so the trials, the members and their forecasts are those one after another (one thread each way)."""
    import torch

    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import TrialSettings, TuningBudget, ensemble_test_scores, search_budgets, tune_forecaster

    assert [b.seconds for b in search_budgets(TuningBudget(60.0, 4), 3, workers=2)] == [40.0, 40.0, 40.0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' share below: one each
    try:
        outcomes = []
        for workers in (1, 2):
            data = SeriesDataModule.from_frame(monthly(100), time_column="month", value_columns=["load"], horizon=6,
                                               season=12, valid_size=24, test_size=12)
            settings = TrialSettings(max_epochs=1, check_every=1, precision="32-true", searches=2, members=2,
                                     workers=workers)
            lines: list[str] = []
            result = tune_forecaster(data, ForecastingTask(), TuningBudget(trials=3, seed=0), settings,
                                     log=lines.append)
            outcomes.append((result, lines))
    finally:
        torch.set_num_threads(threads)
    (alone, alone_lines), (side, side_lines) = outcomes
    scores = [[t["valid_mase"] for t in r.record["trials"] + r.record["further_searches"][0]["trials"]]
              for r in (alone, side)]
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)
    assert [m["params"] for m in alone.record["ensemble"]["members"]] == \
        [m["params"] for m in side.record["ensemble"]["members"]]
    assert alone.record["ensemble"]["valid_mase"] == pytest.approx(side.record["ensemble"]["valid_mase"], rel=1e-6)
    assert len(alone.members) == len(side.members) == 4
    for (one, _), (other, _) in zip(alone.members, side.members, strict=True):  # the refits: the same weights
        for name, weight in one.net.state_dict().items():
            assert torch.allclose(weight, other.net.state_dict()[name], rtol=1e-5, atol=1e-7), name
    assert ensemble_test_scores(alone) == pytest.approx(ensemble_test_scores(side), rel=1e-5)
    assert len([line for line in side_lines if line.startswith(("[search 0] trial", "[search 1] trial"))]) == 6
    assert len(alone_lines) == 6 and not any(line.startswith("[search") for line in alone_lines)
    with pytest.raises(ConfigError, match="workers 0 .--tune_workers.: give a positive whole number"):
        TrialSettings(workers=0)


def test_raw_scores_compare_forecasts_read_in_logs_with_the_values_as_read() -> None:
    """`raw_scores`: forecasts of logs transformed back, MASE's denominator of the values as read: the same MASE as
    the same forecasts computed by hand in the series' units."""
    from seq2text.tasks.tuning import raw_scores, scores_of

    t = np.arange(120.0)
    frame = monthly(120).assign(load=np.exp(t / 40) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)))
    data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                       season=12, transform="auto", valid_size=24, test_size=12)
    view = data.view("valid")
    assert view.reading.power == 0.0 and data.transform_choices() == ("log", "none")
    assert view.view("valid", transform="none").reading.power == 1.0
    split = view.load_split("valid")
    windows = split[list(range(len(split)))]
    logs = (windows.target.double() * windows.scale.double()[:, None] + windows.last.double()[:, None]).numpy()
    rng = np.random.default_rng(0)
    forecasts = {"point": logs + rng.normal(0, 0.05, logs.shape), "actual": logs, "series": np.zeros(len(logs), int),
                 "naive": (windows.naive.double() * windows.scale.double()[:, None]
                           + windows.last.double()[:, None]).numpy()}
    forecasts |= {"lower": forecasts["point"] - 0.1, "upper": forecasts["point"] + 0.1}
    values = frame["load"].to_numpy()
    denominator = np.abs(values[12:84] - values[:72]).mean()  # the training part's (84 steps) seasonal naive
    by_hand = np.abs(np.exp(forecasts["point"]) - np.exp(logs)).mean() / denominator
    assert scores_of(raw_scores(forecasts, view))["mase"] == pytest.approx(by_hand, rel=1e-6)
    assert np.allclose(np.exp(logs)[:, :, 0], [values[o:o + 3] for o in range(84, 106)])


@needs_optuna
def test_the_tuner_never_reads_the_test_part() -> None:
    """Poisoned test values (huge) leave the chosen configuration, every trial's validation MASE and the calibration
    as they were: the tuner sees train | valid only."""
    frame = monthly(150)
    poisoned = frame.copy()
    poisoned.loc[len(frame) - 24:, "load"] = 1e9
    clean, dirty = _tiny_tuning(frame), _tiny_tuning(poisoned)
    assert clean["chosen"] == dirty["chosen"] and clean["valid_mase"] == dirty["valid_mase"]
    assert [t["valid_mase"] for t in clean["trials"]] == [t["valid_mase"] for t in dirty["trials"]]
    assert clean["calibration"]["offsets"] == dirty["calibration"]["offsets"]
    assert clean["calibration_alternative"]["offsets"] == dirty["calibration_alternative"]["offsets"]


def test_cross_validation_folds_move_the_validation_block_back_and_never_reach_the_test_part() -> None:
    frame = monthly(150)
    data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=12, horizon=6,
                                       season=12, valid_size=30, test_size=24)
    assert [data.training_steps(back=b) for b in range(3)] == [96, 66, 36]
    for back in range(3):
        fold = data.view("valid", back=back)
        valid = fold.load_split("valid")
        end = 126 - 30 * back  # where the fold's series is cut: its validation block's end
        assert fold.training_steps() == 96 - 30 * back and len(valid) == 30 - 6 + 1
        batch = valid[[len(valid) - 1]]
        last = batch.target[0, -1, 0] * batch.scale[0, 0] + batch.last[0, 0]
        assert np.isclose(last, frame["load"].iloc[end - 1], atol=1e-4)  # the block's last value, nothing after
    with pytest.raises(DataError, match="shorter than"):
        data.view("valid", back=4)


@needs_optuna
def test_each_trial_is_scored_on_every_fold_and_the_band_calibrated_on_all_their_windows() -> None:
    from seq2text.tasks.tuning import folds_and_lookbacks

    record = _tiny_tuning(monthly(180))  # the third block's training part (66 steps) fits every lookback
    assert record["folds"] == 3 and all(len(t["fold_valid_mase"]) == 3 for t in record["trials"])
    assert all(t["valid_mase"] == pytest.approx(np.mean(t["fold_valid_mase"]), abs=1e-4) for t in record["trials"])
    assert record["calibration"]["folds"] == 3 and record["calibration"]["windows"] == 3 * 25
    single = _tiny_tuning(monthly(180), folds=1, calibration_folds=1)
    assert single["folds"] == 1 and single["calibration"]["windows"] == 25
    hybrid = _tiny_tuning(monthly(180), folds=1)  # one block chooses; the members trained before 2 more calibrate
    assert hybrid["folds"] == 1 and all(len(t["fold_valid_mase"]) == 1 for t in hybrid["trials"])
    assert hybrid["calibration"]["folds"] == 3 and hybrid["calibration"]["windows"] == 3 * 25
    short = SeriesDataModule.from_frame(monthly(110), time_column="month", value_columns=["load"], horizon=6,
                                        season=12, valid_size=20, test_size=24)
    assert folds_and_lookbacks(short, 3) == (2, [12, 24])  # a third block would leave one lookback of the two


@needs_optuna
def test_the_search_starts_from_the_configurations_it_is_given() -> None:
    """`start` configurations are the first trials, in order, as given (the lookback in seasons resolved to one
    that fits); the search then goes on drawing; they keep every member's record like any trial."""
    start = ({"lookback_seasons": 2, "hidden_size": 16, "num_layers": 1, "rnn_type": "gru", "highway": "season",
              "normalize": "series", "loss": "mae", "lr": 0.01, "calendar": False},
             {"lookback": 100, "rnn_type": "lstm", "loss": "quantile"})  # 100: the longest that fits
    record = _tiny_tuning(monthly(150), folds=1, calibration_folds=1, trials=3, start=start)
    first, second, third = (t["params"] for t in record["trials"])
    assert first == {**{k: v for k, v in start[0].items() if k != "lookback_seasons"}, "lookback": 24}
    assert second["lookback"] == 48 and second["rnn_type"] == "lstm" and second["loss"] == "quantile"
    assert set(second) == set(first) and third != first and third != second
    assert list(record["trial_settings"]["start"]) == list(start)


def test_start_configurations_fit_the_data_and_are_checked_where_they_enter() -> None:
    from seq2text.tasks.tuning import PORTFOLIO, TrialSettings, start_params

    data = SeriesDataModule.from_frame(monthly(150), time_column="month", value_columns=["load"], horizon=6,
                                       season=12, valid_size=30, test_size=24)
    undated = SeriesDataModule.from_frame(monthly(150).assign(month=np.arange(150.0)), time_column="month",
                                          value_columns=["load"], horizon=6, season=12, valid_size=30, test_size=24)
    lookbacks = [12, 24, 36]
    assert start_params(PORTFOLIO["woolyrnq"], data.reading, lookbacks, panel=False)["lookback"] == 36  # 4 x 12
    assert start_params(PORTFOLIO["woolyrnq"], data.reading, lookbacks, panel=False)["calendar"] is True
    assert "calendar" not in start_params(PORTFOLIO["woolyrnq"], undated.reading, lookbacks, panel=False)
    assert "series_embedding" not in start_params(PORTFOLIO["fertility_panel"], data.reading, lookbacks, False)
    assert start_params(PORTFOLIO["fertility_panel"], data.reading, lookbacks, True)["series_embedding"] == 0
    assert start_params({"lookback": 6}, data.reading, lookbacks, False) == {"lookback": 12}  # the shortest that fits
    assert len(TrialSettings(start=tuple(PORTFOLIO.values())).start) == len(PORTFOLIO)
    for bad, message in (({"width": 3}, "unknown name 'width'"), ({"rnn_type": "linear"}, "rnn_type 'linear'"),
                         ({"lr": 1.0}, "lr 1.0"), ({"lookback": -2}, "lookback -2"), ([1, 2], "a mapping"),
                         ({"lookback": 12, "lookback_seasons": 1}, "not both")):
        with pytest.raises(ConfigError, match=message):
            TrialSettings(start=(bad,))
    assert TrialSettings(linear=True, start=({"rnn_type": "linear"},)).start  # the linear cell when searched


def test_calibration_offsets_widen_the_band_in_the_units_the_bundle_names() -> None:
    """New bundles keep offsets in units of the series' scale; older ones in the network's (window) units."""
    frame = monthly(60)
    data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                       season=12, normalize="window", valid_size=0, test_size=0)
    torch.manual_seed(0)
    net = SequenceRegressor(RegressorConfig(1, 1, 3, hidden_size=8, quantiles=(0.1, 0.5, 0.9)))
    offsets = np.array([0.5, 1.0, 1.5])
    band = {"band": [0.1, 0.9], "level": 0.8, "offsets": offsets[:, None].tolist()}
    plain = Forecaster(net, data.reading).forecast(frame)
    older = Forecaster(net, data.reading, calibration=band).forecast(frame)
    newer = Forecaster(net, data.reading, calibration={**band, "units": "series"}).forecast(frame)
    series_scale = float(next(iter(data.reading.scales.values()))[0])
    window_scale = max(float(np.std(frame["load"].to_numpy()[-12:])), 0.1 * series_scale)
    for forecast, unit in ((older, window_scale), (newer, series_scale)):
        assert np.allclose(forecast["load"], plain["load"], atol=1e-5)
        assert np.allclose(forecast["load_q10"], np.minimum(plain["load_q10"] - offsets * unit, plain["load"]),
                           atol=1e-4)
        assert np.allclose(forecast["load_q90"], np.maximum(plain["load_q90"] + offsets * unit, plain["load"]),
                           atol=1e-4)


def test_a_band_in_local_units_widens_where_the_series_moved_more_lately() -> None:
    """`units: local`: the offsets scale with the standard deviation of the last `local_steps` step changes."""
    quiet = monthly(60)
    loud = quiet.copy()
    loud.loc[48:, "load"] += np.tile([3.0, -3.0], 6)  # the last year swings
    data = SeriesDataModule.from_frame(quiet, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                       season=12, valid_size=0, test_size=0)
    torch.manual_seed(0)
    net = SequenceRegressor(RegressorConfig(1, 1, 3, hidden_size=8, quantiles=(0.1, 0.5, 0.9)))
    offsets = np.array([0.5, 1.0, 1.5])
    band = {"band": [0.1, 0.9], "level": 0.8, "offsets": offsets[:, None].tolist(), "units": "local",
            "local_steps": 24}
    widths = {}
    for name, frame in (("quiet", quiet), ("loud", loud)):
        plain = Forecaster(net, data.reading).forecast(frame)
        calibrated = Forecaster(net, data.reading, calibration=band).forecast(frame)
        series = read_series(frame, "month", ["load"], None, "test")[0]
        recent = float(np.std(np.diff(frame["load"].to_numpy()[-25:])))
        assert np.isclose(data.reading.local_scale(series, len(series), 24)[0], recent)
        assert np.allclose(calibrated["load_q90"], np.maximum(plain["load_q90"] + offsets * recent, plain["load"]),
                           atol=1e-4)
        widths[name] = (calibrated["load_q90"] - calibrated["load_q10"]).to_numpy()
    assert np.all(widths["loud"] > 3 * widths["quiet"])
    flat = quiet.assign(load=5.0)  # no movement: the floor, a tenth of the series' (training) scale
    series = read_series(flat, "month", ["load"], None, "test")[0]
    floor = 0.1 * float(next(iter(data.reading.scales.values()))[0])
    assert np.isclose(data.reading.local_scale(series, 60, 24)[0], floor)
    assert data.local_scales("train", 24).shape == (len(data.load_split("train")), 1)


def test_forward_selection_adds_the_configurations_that_lower_the_mean_forecasts_error() -> None:
    """`select_members`: `best` takes the best scores; `forward` starts from the best trial and adds whichever
    lowers the validation MASE of the mean most, and stops when none does."""
    from seq2text.tasks.tuning import select_members

    actual = np.zeros((20, 2, 1))

    def trial(error: np.ndarray) -> list[dict[str, np.ndarray]]:
        point = actual + error.reshape(20, 1, 1)
        return [{"point": point, "lower": point - 1, "upper": point + 1, "actual": actual,
                 "naive": actual + 1, "mase": np.ones((20, 1, 1))}]

    up, down = np.full(20, 0.5), np.full(20, -0.6)  # opposite errors: their mean is nearly right
    kept = {0: (0.5, {"n": 0}, trial(up)), 1: (0.55, {"n": 1}, trial(up * 1.1)), 2: (0.6, {"n": 2}, trial(down)),
            3: (0.9, {"n": 3}, trial(up * 1.8))}
    best = {"folds": 1, "kept": kept}
    assert [number for number, _ in select_members(best, 3, "best")] == [0, 1, 2]
    assert [number for number, _ in select_members(best, 3, "forward")] == [0, 2]  # 0 + 2: 0.05; a third adds error
    assert [number for number, _ in select_members(best, 1, "forward")] == [0]


def test_decayed_weights_halve_every_half_life_and_keep_their_sum() -> None:
    from seq2text.predict.conformal import decayed

    weights = decayed(np.array([2.0, 2.0, 1.0, 1.0]), np.array([8.0, 4.0, 4.0, 0.0]), 4.0)  # halves every 4 steps
    assert weights.sum() == pytest.approx(6.0) and weights[1] / weights[0] == pytest.approx(2.0)
    assert weights[3] / weights[2] == pytest.approx(2.0) and weights[2] / weights[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="half_life"):
        decayed(weights, np.zeros(4), 0.0)


def test_adaptive_conformal_inference_moves_the_level_by_the_misses_each_origin_could_know() -> None:
    """`adapted_level`: each window is judged by the band its origin had (the kept scores and the windows known by
    then, at the level then), and moves the level by rate × (its misses − 0.2) once known; held in ADAPTED_LEVELS."""
    from seq2text.predict.conformal import ADAPTED_LEVELS, adapted_level
    from seq2text.tasks.tuning import ADAPT, TrialSettings

    def level(*args: object, **options: object) -> float:
        (one,) = adapted_level(0.8, *args, **options)  # one level unless by series
        return float(one)

    assert TrialSettings().adapt == ADAPT and TrialSettings(online=False).adapt == 0.0  # an offline band: none
    kept, weights = np.linspace(0, 1, 101)[:, None], np.ones(101)
    far = (5.0 + np.arange(10.0)).reshape(10, 1, 1)  # ten one-step windows, each further outside than the last
    starts = np.arange(10.0)
    assert level(0.0, kept, weights, far, starts, starts) == 0.8
    assert level(0.01, kept, weights, far, starts, starts) == pytest.approx(0.8 + 0.01 * 10 * 0.8)
    assert level(0.01, kept, weights, -far, starts, starts) == pytest.approx(0.8 - 0.01 * 10 * 0.2)
    assert level(1.0, kept, weights, far, starts, starts) == ADAPTED_LEVELS[1]
    assert level(1.0, kept, weights, -far, starts, starts) == ADAPTED_LEVELS[0]
    # an eleventh window at 0.9: outside the nominal band (0.81), inside the band of a level the ten misses raised
    scores, at = np.concatenate([far, [[[0.9]]]]), np.append(starts, 10.0)
    known = level(0.01, kept, weights, scores, at, at)  # the ten known before its origin: inside
    unknown = level(0.01, kept, weights, scores, at, np.append(starts + 20, 10.0))  # not yet: a miss
    assert known == pytest.approx(0.8 + 0.01 * (10 * 0.8 - 0.2))
    assert unknown == pytest.approx(0.8 + 0.01 * (11 * 0.8))
    # a panel of three series, each origin's three windows alike: per window the level moves three times as far;
    # by origin, as far as for one series
    three, thrice = np.repeat(far, 3, axis=0), np.repeat(starts, 3)
    assert level(0.005, kept, weights, three, thrice, thrice) == pytest.approx(0.8 + 0.005 * 30 * 0.8)
    assert level(0.005, kept, weights, three, thrice, thrice, by="origin") == pytest.approx(
        level(0.005, kept, weights, far, starts, starts))


def test_an_adapted_level_per_series_moves_by_that_series_misses_alone() -> None:
    """`adapted_level(by="series")`: a panel of a series whose windows all miss and one whose windows all lie inside:
    one level each, the first raised by its ten misses, the second lowered by its ten hits; pooled, the two cancel
    out but for the difference of their moves."""
    from seq2text.predict.conformal import adapted_level

    kept, weights = np.linspace(0, 1, 101)[:, None], np.ones(101)
    far = (5.0 + np.arange(10.0)).reshape(10, 1, 1)
    scores, starts = np.concatenate([far, -far]), np.tile(np.arange(10.0), 2)
    groups = np.repeat(["b", "a"], 10)  # the missing series is "b": levels come in sorted order, "a" first
    inside, missing = adapted_level(0.8, 0.01, kept, weights, scores, starts, starts, "series", groups)
    assert missing == pytest.approx(0.8 + 0.01 * 10 * 0.8) and inside == pytest.approx(0.8 - 0.01 * 10 * 0.2)
    (pooled,) = adapted_level(0.8, 0.01, kept, weights, scores, starts, starts)
    assert pooled == pytest.approx(0.8 + 0.01 * 10 * (0.8 - 0.2))
    # one group is the pooled level to the last bit: a rank ⌈(m + 1)·level⌉ may turn on it
    rng = np.random.default_rng(0)
    noisy, times = rng.normal(size=(40, 2, 1)), np.repeat(np.arange(20.0), 2)
    assert adapted_level(0.8, 0.05, kept, weights, noisy, times, times + 1, "series", np.zeros(40)).tolist() == \
        adapted_level(0.8, 0.05, kept, weights, noisy, times, times + 1).tolist()
    with pytest.raises(ValueError, match="groups with series only"):
        adapted_level(0.8, 0.01, kept, weights, scores, starts, starts, "series")
    with pytest.raises(ValueError, match="give one of window, origin, series"):
        adapted_level(0.8, 0.01, kept, weights, scores, starts, starts, "panel")


def test_an_ensemble_combines_its_networks_by_their_mean_or_their_median() -> None:
    """`combine`: three networks' band edges and point forecasts averaged, or their middle one at each point, or the
    middle point forecast within the averaged edges."""
    frame = monthly(60)
    data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                       season=12, valid_size=0, test_size=0)
    nets = []
    for seed in range(3):
        torch.manual_seed(seed)
        nets.append(SequenceRegressor(RegressorConfig(1, 1, 3, hidden_size=8, quantiles=(0.1, 0.5, 0.9))))
    members = [(net, data.reading) for net in nets[1:]]
    history = read_series(frame, "month", ["load"], None, "t")
    origins = [(history[0], 60)]
    alone = np.stack([Forecaster(net, data.reading)._combined_band(origins) for net in nets])  # (3, 3, N, H, V)
    mean, median, point = (Forecaster(nets[0], data.reading, members=members, combine=c)._combined_band(origins)
                           for c in ("mean", "median", "median-point"))
    assert np.allclose(mean, alone.mean(axis=0)) and np.allclose(median, np.median(alone, axis=0))
    assert not np.allclose(mean, median)
    assert np.allclose(point[1], median[1]) and np.allclose(point[0], mean[0]) and np.allclose(point[2], mean[2])
    with pytest.raises(ConfigError, match="combine 'mode': give one of mean, median, median-point"):
        Forecaster(nets[0], data.reading, combine="mode")


def _online_setup() -> tuple[pd.DataFrame, SeriesDataModule, SequenceRegressor, dict, np.ndarray, np.ndarray]:
    """96 months of a series, a data module of its first 60 (lookback 12, horizon 3), an untrained quantile network,
    ten validation windows of normal noise (point, actual: (10, 3, 1) each) and their conformity scores and spread."""
    from seq2text.predict.conformal import conformal_scores

    frame = monthly(96)
    data = SeriesDataModule.from_frame(frame.iloc[:60], time_column="month", value_columns=["load"], lookback=12,
                                       horizon=3, season=12, valid_size=0, test_size=0)
    torch.manual_seed(0)
    net = SequenceRegressor(RegressorConfig(1, 1, 3, hidden_size=8, quantiles=(0.1, 0.5, 0.9)))
    rng = np.random.default_rng(1)
    valid = {k: rng.normal(size=(10, 3, 1)) for k in ("point", "actual")}
    scores, spread = conformal_scores(valid["point"], valid["point"] - 1, valid["point"] + 1, valid["actual"])
    return frame, data, net, valid, scores, spread


def test_an_online_band_adds_the_windows_after_the_fit_to_its_calibration() -> None:
    """`online: true`: each forecast pools the kept validation scores with the scores of every full window after
    the fit's end (nothing before it, nothing of an unknown series); a series that got louder widens the band."""
    from seq2text.predict.conformal import conformal_offsets, conformal_scores, offsets_of

    frame, data, net, valid, scores, spread = _online_setup()
    offsets = offsets_of(scores, spread, 0.8)
    assert np.allclose(offsets, conformal_offsets(valid["point"], valid["point"] - 1, valid["point"] + 1,
                                                  valid["actual"], 0.8))
    assert data.training_ends() == {"": "2004-12-01T00:00:00"}  # the 60th month
    band = {"band": [0.1, 0.9], "level": 0.8, "units": "series", "offsets": offsets.tolist(),
            "scores": np.sort(scores, axis=0).tolist(), "spread": spread.tolist(), "fit_end": data.training_ends()}
    online = Forecaster(net, data.reading, calibration={**band, "online": True})
    offline = Forecaster(net, data.reading, calibration={**band, "online": False})
    history = read_series(frame, "month", ["load"], None, "test")
    assert np.allclose(online.offsets(read_series(frame.iloc[:62], "month", ["load"], None, "t")), offsets)  # none
    assert np.allclose(offline.offsets(history), offsets)
    origins = [(history[0], o) for o in range(60, 96 - 3 + 1)]  # every full window after month 60: 34
    low, point, high = online._combined_band(origins)
    actual = np.stack([history[0].values[o:o + 3] for _, o in origins])
    unit = float(data.reading.scales[""][0])
    new, _ = conformal_scores(point / unit, low / unit, high / unit, actual / unit, spread)
    assert new.shape == (34 * 3, 1)
    assert np.allclose(online.offsets(history), offsets_of(np.concatenate([scores, new]), spread, 0.8))
    capped = Forecaster(net, data.reading, calibration={**band, "online": True}, online_windows=10)
    kept, starts, ends, ages, kept_age, ids = capped._scores_after_fit(history)
    assert kept.shape == (10, 3, 1) and np.allclose(kept.reshape(-1, 1), new[-30:])  # the 10 most recent windows
    assert list(starts) == list(history[0].times[84:94]) and list(ends) == list(history[0].times[86:96])
    assert list(ages) == list(range(9, -1, -1)) and kept_age == 96 - 60  # steps before the newest origin (93)
    assert list(ids) == [""] * 10
    decaying = Forecaster(net, data.reading, calibration={**band, "online": True, "decay": 6.0})
    by_hand = 0.5 ** (np.concatenate([np.full(len(scores), 36.0), np.repeat(np.arange(33, -1, -1), 3)]) / 6.0)
    by_hand *= len(by_hand) / by_hand.sum()
    assert np.allclose(decaying.offsets(history), offsets_of(np.concatenate([scores, new]), spread, 0.8, by_hand))
    assert not np.allclose(decaying.offsets(history), online.offsets(history))
    loud = frame.copy()
    loud.loc[60:, "load"] += np.tile([30.0, -30.0], 18)
    widened = online.forecast(loud)
    assert np.all((widened["load_q90"] - widened["load_q10"]).to_numpy()
                  > (offline.forecast(loud)["load_q90"] - offline.forecast(loud)["load_q10"]).to_numpy() + 10)
    other = loud.assign(id="elsewhere")  # a series the model has no fit end for: the kept scores alone
    unknown = read_series(other, "month", ["load"], "id", "t")
    assert np.allclose(online.offsets(unknown), offsets)
    with pytest.raises(DataError, match="trained up to"):
        online.offsets(read_series(frame.assign(month=np.arange(96.0)), "month", ["load"], None, "t"))


def test_an_online_band_adapted_by_series_widens_the_series_that_missed() -> None:
    """`adapt_by: series`: a panel of a quiet series and one that got louder after the fit: each series' band at its
    own adapted level, the loud one's wider than the pooled level gives it, the quiet one's narrower."""
    frame, data, net, _, scores, spread = _online_setup()
    end, reading = data.training_ends()[""], replace(data.reading, scales={"quiet": data.reading.scales[""],
                                                                          "loud": data.reading.scales[""]})
    band = {"band": [0.1, 0.9], "level": 0.8, "units": "series", "offsets": np.zeros((3, 1)).tolist(),
            "scores": np.sort(scores, axis=0).tolist(), "spread": spread.tolist(), "online": True, "adapt": 0.05,
            "fit_end": {"quiet": end, "loud": end}}
    loud = frame.assign(id="loud")
    loud.loc[60:, "load"] += np.tile([30.0, -30.0], 18)
    panel = read_series(pd.concat([frame.assign(id="quiet"), loud]), "month", ["load"], "id", "t")
    pooled = Forecaster(net, reading, calibration=band).offsets(panel)
    by_series = Forecaster(net, reading, calibration={**band, "adapt_by": "series"})
    quiet, noisy = by_series.offsets(panel)
    assert pooled.shape == (2, 3, 1) and np.allclose(pooled[0], pooled[1])  # one level for both
    assert np.all(noisy >= pooled[1]) and np.all(quiet <= pooled[0]) and np.all(noisy > quiet)
    new, starts, ends, _, _, ids = by_series._scores_after_fit(panel)
    kept = np.asarray(band["scores"])
    levels = by_series._levels(kept, np.ones(len(kept)), new, starts, ends, ids)
    assert levels["loud"] > 0.8 > levels["quiet"] and levels[None] == 0.8


def test_the_range_mean_rule_picks_a_log_where_the_spread_grows_with_the_level() -> None:
    from seq2text.text.series import power_choice

    t = np.arange(144.0)
    season = np.sin(2 * np.pi * t / 12)
    growing = (np.exp(t / 48) * (1 + 0.3 * season))[:, None]  # multiplicative: the swing grows with the level
    additive = (1 + t / 12 + 0.3 * season)[:, None]  # the same swing (and the same slope) at every level
    assert power_choice([growing], 12) == 0.0 and power_choice([additive], 12) == 1.0
    steep = (3 * np.exp(t / 48) + 0.3 * season)[:, None]  # the same swing on a level that grows twentyfold
    assert power_choice([steep], 12) == 1.0  # the chunk's spread is measured around its line, not the level's climb
    assert power_choice([np.vstack([[0.0], growing])], 12) == 0.5  # a zero: no log; the square root is the nearest
    assert power_choice([1000 + additive], 12) == 1.0  # levels within 20 % of each other: no slope to read
    assert power_choice([growing[:30]], 12) == 1.0  # two chunks: too few


def test_a_transformed_series_is_read_in_logs_and_forecast_in_its_own_units() -> None:
    """data.transform log: the network reads and forecasts logs (views keep them, never twice); `forecast` gives
    the series' units back: the same network on a log-reading forecaster gives exp of its forecasts of the logs."""
    frame = monthly(120)
    data = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                       season=12, transform="log", valid_size=24, test_size=12)
    assert data.reading.power == 0.0
    assert np.allclose(data._series[0].values[:, 0], np.log(frame["load"]))
    view = data.view("test", lookback=24)
    assert view.reading.power == 0.0 and np.allclose(view._series[0].values, data._series[0].values)
    torch.manual_seed(0)
    net = SequenceRegressor(RegressorConfig(1, 1, 3, hidden_size=8, quantiles=(0.1, 0.5, 0.9)))
    logs = Forecaster(net, replace(data.reading, power=1.0)).forecast(frame.assign(load=np.log(frame["load"])))
    units = Forecaster(net, data.reading).forecast(frame)
    for column in ("load", "load_q10", "load_q90"):
        assert np.allclose(units[column], np.exp(logs[column]), rtol=1e-5)
    with pytest.raises(DataError, match="log transform .* data.transform none"):
        Forecaster(net, data.reading).forecast(frame.assign(load=frame["load"] - 20))
    with pytest.raises(DataError, match="data.transform none"):
        SeriesDataModule.from_frame(frame.assign(load=frame["load"] - 20), time_column="month",
                                    value_columns=["load"], transform="log", horizon=3, season=12)
    with pytest.raises(ConfigError, match="data.transform 'cube'"):
        SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], transform="cube")
    auto = SeriesDataModule.from_frame(frame, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                       season=12, transform="auto", valid_size=24, test_size=12)
    assert auto.reading.power == 1.0  # monthly(): the same swing at every level
    t = np.arange(120.0)
    growing = frame.assign(load=np.exp(t / 40) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)))
    poisoned = growing.copy()
    poisoned.loc[108:, "load"] *= 1000  # the test part: never read by the rule
    chosen = [SeriesDataModule.from_frame(f, time_column="month", value_columns=["load"], lookback=12, horizon=3,
                                          season=12, transform="auto", valid_size=24, test_size=12).reading
              for f in (growing, poisoned)]
    assert chosen[0].power == chosen[1].power == 0.0 and chosen[0].scales == chosen[1].scales


def test_min_steps_lengthens_the_fits_of_a_short_series_only() -> None:
    from seq2text.tasks.tuning import TrialSettings, epochs_of

    data = SeriesDataModule.from_frame(monthly(150), time_column="month", value_columns=["load"], lookback=12,
                                       horizon=6, season=12, valid_size=30, test_size=24, batch_size=16)
    windows = len(data.load_split("train"))
    assert windows == 96 - 12 - 6 + 1  # 79 windows: 5 batches of 16 per epoch
    assert epochs_of(data, TrialSettings(max_epochs=30)) == 30
    assert epochs_of(data, TrialSettings(max_epochs=30, min_steps=500)) == 100  # ⌈500 / 5⌉
    assert epochs_of(data, TrialSettings(max_epochs=30, min_steps=100)) == 30  # 150 steps already


def test_the_linear_cell_is_the_highway_alone() -> None:
    """num_layers 0: a linear autoregression of the lookback plus a constant per output, nothing recurrent."""
    from seq2text.tasks.forecasting import ForecastingTask
    from seq2text.tasks.tuning import make_task

    config = RegressorConfig(2, 1, 3, num_layers=0, autoregressive=4, quantiles=(0.1, 0.5, 0.9))
    net = SequenceRegressor(config)
    assert not any("rnn" in name for name, _ in net.named_parameters())
    with torch.no_grad():
        net.highway.weight.normal_()
        net.constant.copy_(torch.arange(9.0))
    x = torch.randn(5, 6, 2)
    expected = x[:, -4:, 0] @ net.highway.weight.T + net.highway.bias  # (5, 3): the first variable's last 4 steps
    out = net(x)
    assert out.shape == (5, 3, 1, 3)
    assert torch.allclose(out, expected[:, :, None, None] + torch.arange(9.0).view(1, 3, 1, 3), atol=1e-5)
    for bad in ({"autoregressive": 0}, {"autoregressive": 4, "series_embedding": 2, "num_series": 3}):
        with pytest.raises(ValueError, match="linear highway alone"):
            RegressorConfig(2, 1, 3, num_layers=0, **bad)
    reading = SeriesDataModule.from_frame(monthly(60), time_column="month", value_columns=["load"], lookback=12,
                                          horizon=3, season=12, valid_size=0, test_size=0).reading
    params = {"lookback": 24, "hidden_size": 64, "num_layers": 2, "rnn_type": "linear", "highway": "none",
              "normalize": "series", "loss": "mae", "lr": 0.01, "series_embedding": 4}
    task = make_task(ForecastingTask(), params, reading)
    assert (task.network.num_layers, task.network.autoregressive, task.network.series_embedding) == (0, 24, 0)


def test_a_linear_forecaster_trains_ships_and_compresses(table: Path, tmp_path: Path) -> None:
    from seq2text.bundles.compression import compress_bundle

    bundle = fit(RECIPE, tmp_path, "--data.init_args.path", str(table), *TINY, "--model.init_args.network.num_layers",
                 "0", "--trainer.max_epochs", "3")
    forecaster = seq2text.load(bundle)
    assert forecaster.net.config.num_layers == 0 and not hasattr(forecaster.net, "rnn")
    history = pd.read_csv(table)
    future = forecaster.forecast(history)
    assert len(future) == 6 and np.isfinite(future["load"]).all()
    assert np.isfinite(json.loads((bundle / "metrics.json").read_text())["test/mase"])
    smaller = seq2text.load(compress_bundle(bundle, tmp_path / "int8", "int8"))
    assert np.allclose(smaller.forecast(history)["load"], future["load"], rtol=0.05, atol=0.05)


def test_conformal_offsets_bring_a_band_to_its_nominal_coverage() -> None:
    from seq2text.predict.conformal import calibrated_band, conformal_offsets

    rng = np.random.default_rng(0)
    step_scale = np.array([1.0, 2.0, 3.0])[None, :, None]
    actual = rng.standard_t(4, size=(4000, 3, 1)) * step_scale  # wider with the step
    point = np.zeros_like(actual)
    narrow, wide = np.broadcast_to(0.3 * step_scale, actual.shape), np.broadcast_to(4.0 * step_scale, actual.shape)
    for half in (point, narrow, wide):  # a point model, a band that covers too little, one that covers too much
        offsets = conformal_offsets(point[:2000], -half[:2000], half[:2000], actual[:2000], 0.8)
        assert offsets.shape == (3, 1)
        low, high = calibrated_band(point[2000:], -half[2000:], half[2000:], offsets)
        inside = (low <= actual[2000:]) & (actual[2000:] <= high)
        assert abs(inside.mean() - 0.8) < 0.02 and np.all(np.abs(inside.mean(axis=0) - 0.8) < 0.04), inside.mean(0)
    with pytest.raises(DataError, match="raise data.valid_size"):
        conformal_offsets(point[:1], narrow[:1], narrow[:1], actual[:1], 0.8)
    from seq2text.predict.conformal import conformal_scores, offsets_of, summarised

    scores, spread = conformal_scores(point, -narrow, narrow, actual)  # 12000 scores kept as 500, each worth 24
    kept, weights = summarised(scores, 500)
    assert kept.shape == (500, 1) and np.allclose(weights, 24.0)
    assert np.allclose(offsets_of(kept, spread, 0.8, weights), offsets_of(scores, spread, 0.8), rtol=0.01)


def test_a_panel_trains_one_model_with_a_series_embedding(tmp_path: Path) -> None:
    frame = monthly(120, ids=("north", "south", "east"))
    table = tmp_path / "panel.csv"
    frame.to_csv(table, index=False)
    bundle = fit(RECIPE, tmp_path, "--data.init_args.path", str(table), *TINY, "--data.init_args.id_column", "site",
                 "--data.init_args.lookback", "12", "--model.init_args.network.autoregressive", "12",
                 "--model.init_args.network.series_embedding", "4", "--data.init_args.valid_size", "12",
                 "--data.init_args.test_size", "12", "--trainer.max_epochs", "2")
    forecaster = seq2text.load(bundle)
    assert forecaster.net.config.num_series == 3 and forecaster.net.series.weight.shape == (3, 4)
    future = forecaster.forecast(frame)  # every series of the panel at once
    assert list(dict.fromkeys(future["site"])) == ["north", "south", "east"] and len(future) == 3 * 6
    alone = forecaster.forecast(frame[frame["site"] == "east"])
    assert np.allclose(alone["load"], future[future["site"] == "east"]["load"], atol=1e-5)
    with pytest.raises(DataError, match="not in the training panel"):
        forecaster.forecast(frame[frame["site"] == "east"].assign(site="west"))


def test_season_and_horizon_come_from_the_time_step() -> None:
    quarterly = pd.DataFrame({"time": pd.date_range("1990-01-01", periods=120, freq="QS"), "value": np.arange(120.0)})
    data = SeriesDataModule.from_frame(quarterly, lookback=8, horizon=None, season=None, valid_size=16, test_size=16)
    assert (data.reading.season, data.reading.horizon) == (4, 8)
    numbers = quarterly.assign(time=np.arange(120.0))
    with pytest.raises(ConfigError, match="set data.season and data.horizon"):
        SeriesDataModule.from_frame(numbers, lookback=8, horizon=None, season=None)


@pytest.mark.parametrize("case", ["not a forecaster", "validate", "too short", "no validation part", "bad trials",
                                  "bad folds", "bad members", "bad seeds", "bad band", "bad linear", "bad online",
                                  "bad adapt", "adapt offline", "bad decay", "decay offline", "bad combine",
                                  "bad selection",
                                  "bad transform", "no start file", "bad start file", "bad start"])
def test_tuning_refuses_what_it_cannot_do(case: str, table: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    short = tmp_path / "short.csv"
    monthly(70).to_csv(short, index=False)
    (tmp_path / "latin1.json").write_bytes('[{"rnn_type": "gr\u00fc"}]'.encode("latin-1"))
    (tmp_path / "typo.json").write_text('[{"rnn_type": "gru", "hiden_size": 32}]')
    recipes = Path(__file__).parent.parent / "recipes"
    auto = ["--config", str(recipes / AUTO), *TUNE_TINY, "--bundle", str(tmp_path / "never")]
    argv, expect = {
        "not a forecaster": (["fit", "--config", str(recipes / "sst2_bilstm.yaml"), "--tune", "1m"],
                             "configures forecasters"),
        "validate": (["validate", *auto, "--data.init_args.path", str(table), "--tune", "1m"],
                     "go with `seq2text fit`"),
        "too short": (["fit", *auto, "--data.init_args.path", str(short), "--data.init_args.lookback", "6",
                       "--tune_trials", "1"],
                      "too few for a lookback"),
        "no validation part": (["fit", *auto, "--data.init_args.path", str(table), "--data.init_args.valid_size", "0",
                                "--tune_trials", "1"], "validation part"),
        "bad trials": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "two"],
                       "--tune_trials two"),
        "bad folds": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_folds", "0"],
                      "--tune_folds 0: give a positive whole number of validation blocks"),
        "bad members": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_members=x"],
                        "--tune_members x: give a positive whole number of ensemble members"),
        "bad seeds": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_seeds", "0"],
                      "--tune_seeds 0: give a positive whole number of seeds"),
        "bad band": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_band", "wide"],
                     "band 'wide' (--tune_band): give one of series, local"),
        "bad linear": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_linear=yes"],
                       "--tune_linear yes: give true or false"),
        "bad selection": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1",
                           "--tune_selection", "greedy"], "selection 'greedy' (--tune_selection): give one of best, "),
        "bad transform": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1",
                           "--tune_transform", "auto"], "transform 'auto' (--tune_transform): give one of rule, "),
        "bad adapt": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_adapt", "x"],
                      "--tune_adapt x: give a number in [0, 1)"),
        "adapt offline": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_adapt",
                           "0.05", "--tune_online", "false"], "adapt 0.05 (--tune_adapt): give a rate in [0, 1), with"),
        "bad decay": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_decay", "-1"],
                      "decay -1.0 (--tune_decay): give a half-life ≥ 0"),
        "decay offline": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_decay",
                           "2", "--tune_online", "false"], "with an online band"),
        "bad combine": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_combine",
                         "average"], "combine 'average' (--tune_combine): give one of mean, median, median-point"),
        "bad online": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_online", "1"],
                       "--tune_online 1: give true or false"),
        "no start file": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_start",
                           "portfolo"], "--tune_start portfolo: no such file; give none, portfolio or a JSON file"),
        "bad start file": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_start",
                            str(tmp_path / "latin1.json")], "not UTF-8 JSON"),
        "bad start": (["fit", *auto, "--data.init_args.path", str(table), "--tune_trials", "1", "--tune_start",
                       str(tmp_path / "typo.json")], "start configuration 0: unknown name 'hiden_size'"),
    }[case]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err, err[-1500:]
    assert not (tmp_path / "never").exists()
