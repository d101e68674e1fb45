"""The traffic experiment a worker runs: `fit --config config.json`, then `predict` for the grader.

It runs with the run's workspace as its working directory, where the harness's `prepare` wrote
`train.npy`, `val.npy` (time x sensor, NaN = missing) and `meta.json`. `fit` trains one of the
families in `families.py` (ridge_ar, gbdt, mlp), saves `model.pkl` and prints a `key: value` summary
(informational: the harness grades). `predict` reads one JSON request per line on stdin, `{"origin": ISO time,
"history": [[reading or null per sensor], ...]}` whose last row is the origin, and answers each with
`{"forecast": [[value per sensor] per horizon]}` on stdout. Logs go to stderr: stdout is the protocol.

The model is pooled across sensors, one row per (origin, sensor), on readings divided by each sensor's
training mean. A row holds the sensor's last `lags` readings, its readings one day (and one week)
before each target if `seasonal` asks, its training profile at each target's time of day, and the
origin's time of day and weekday. Training rows and forecast rows come from the same `design`.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from families import FAMILIES, Predictor

DEFAULTS: dict[str, Any] = {
    "model": "ridge_ar",
    "seed": 0,
    "lags": 24,
    "seasonal": "day",
    "ridge_alpha": 1.0,
    "gbdt_learning_rate": 0.1,
    "gbdt_max_iter": 100,
    "gbdt_max_leaf_nodes": 31,
    "mlp_hidden": 64,
    "mlp_layers": 2,
    "mlp_lr": 1e-3,
    "mlp_epochs": 20,
    "mlp_weight_decay": 1e-4,
}
SEASONAL_OFFSETS_DAYS = {"none": (), "day": (1,), "week": (1, 7)}
MODEL_FILE = Path("model.pkl")


@dataclass(frozen=True)
class FeatureSpec:
    lags: int
    seasonal: str
    horizons: tuple[int, ...]
    step_minutes: int

    @property
    def steps_per_day(self) -> int:
        return 24 * 60 // self.step_minutes

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(days * self.steps_per_day for days in SEASONAL_OFFSETS_DAYS[self.seasonal])

    @property
    def first_origin(self) -> int:
        return max([self.lags - 1, *[offset - 1 for offset in self.offsets]])


def carried_forward(values: np.ndarray) -> np.ndarray:
    """Missing readings replaced by the last one seen; still-missing leading readings become zero."""
    rows = np.where(np.isnan(values), 0, np.arange(len(values))[:, None])
    np.maximum.accumulate(rows, axis=0, out=rows)
    return np.nan_to_num(values[rows, np.arange(values.shape[1])])


def slot_of_day(times: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    minutes = (times - times.astype("datetime64[D]")).astype("timedelta64[m]").astype(np.int64)
    return minutes // spec.step_minutes


def daily_profile(scaled: np.ndarray, times: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Each sensor's mean scaled reading per step of the day, shape (steps_per_day, sensors)."""
    slots = slot_of_day(times, spec)
    sums = np.zeros((spec.steps_per_day, scaled.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, slots, np.nan_to_num(scaled))
    np.add.at(counts, slots, ~np.isnan(scaled))
    return sums / np.maximum(counts, 1)


def design(
    filled: np.ndarray, times: np.ndarray, origins: np.ndarray, profile: np.ndarray, spec: FeatureSpec
) -> np.ndarray:
    """Feature rows for `origins` (indices into `filled` and `times`), origin-major then sensor."""
    steps = np.array(spec.horizons)
    parts = [filled[origins[:, None] - np.arange(spec.lags)[None, :]].transpose(0, 2, 1)]
    parts += [
        filled[origins[:, None] + steps[None, :] - offset].transpose(0, 2, 1) for offset in spec.offsets
    ]
    slot = slot_of_day(times[origins], spec)
    parts.append(profile[(slot[:, None] + steps[None, :]) % spec.steps_per_day].transpose(0, 2, 1))
    angle = 2 * np.pi * slot / spec.steps_per_day
    weekday = (times[origins].astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    calendar = np.column_stack(
        [np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle), np.eye(7)[weekday]]
    )
    parts.append(np.repeat(calendar[:, None, :], filled.shape[1], axis=1))
    return np.concatenate(parts, axis=2).reshape(len(origins) * filled.shape[1], -1)


@dataclass(frozen=True)
class Forecaster:
    """A fitted family plus what turns raw readings into its rows and its output back into counts."""

    spec: FeatureSpec
    scale: np.ndarray
    profile: np.ndarray
    predictor: Predictor

    def forecast(self, history: np.ndarray, origin: np.datetime64) -> np.ndarray:
        """Non-negative forecasts shaped (horizon, sensor) from readings whose last row is at `origin`."""
        times = origin - np.arange(len(history))[::-1] * np.timedelta64(self.spec.step_minutes, "m")
        filled = carried_forward(history / self.scale)
        rows = design(filled, times, np.array([len(history) - 1]), self.profile, self.spec)
        return np.maximum(self.predictor.predict(rows).T * self.scale, 0.0)


def fit(config_path: Path) -> None:
    started = time.perf_counter()
    config = _config(config_path)
    meta = json.loads(Path("meta.json").read_text())
    train, val = np.load("train.npy"), np.load("val.npy")
    spec = FeatureSpec(int(config["lags"]), config["seasonal"], tuple(meta["horizons"]), meta["step_minutes"])
    scale = np.nan_to_num(np.nanmean(train, axis=0)) + 1.0
    scaled = np.vstack([train, val]) / scale
    step = np.timedelta64(spec.step_minutes, "m")
    times = np.datetime64(meta["train_start"]) + np.arange(len(scaled)) * step
    profile = daily_profile(scaled[: len(train)], times[: len(train)], spec)
    reach = max(spec.horizons)
    train_origins = np.arange(spec.first_origin, len(train) - reach)
    val_origins = np.arange(max(len(train) - 1, spec.first_origin), len(scaled) - reach)
    *train_rows, _ = _rows(scaled, scale, times, train_origins, profile, spec)
    *val_rows, val_scale = _rows(scaled, scale, times, val_origins, profile, spec)
    predictor = FAMILIES[config["model"]](tuple(train_rows), tuple(val_rows), config)
    forecaster = Forecaster(spec=spec, scale=scale, profile=profile, predictor=predictor)
    MODEL_FILE.write_bytes(pickle.dumps(forecaster))
    val_error = np.abs(predictor.predict(val_rows[0]) - val_rows[1]) * val_scale[:, None]
    print(f"model: {config['model']}")
    print(f"val_mae: {float(np.mean(val_error)):.4f}")
    print(f"train_rows: {len(train_rows[0])}")
    print(f"features: {train_rows[0].shape[1]}")
    print(f"fit_seconds: {time.perf_counter() - started:.2f}")


def predict() -> None:
    forecaster: Forecaster = pickle.loads(MODEL_FILE.read_bytes())
    for line in sys.stdin:
        request = json.loads(line)
        history = np.array(request["history"], dtype=float)
        forecast = forecaster.forecast(history, np.datetime64(request["origin"]))
        sys.stdout.write(json.dumps({"forecast": np.round(forecast, 3).tolist()}) + "\n")
        sys.stdout.flush()


def _rows(
    scaled: np.ndarray,
    scale: np.ndarray,
    times: np.ndarray,
    origins: np.ndarray,
    profile: np.ndarray,
    spec: FeatureSpec,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, scaled targets (rows, horizons) and each row's sensor scale; rows whose target is
    missing are dropped."""
    features = design(carried_forward(scaled), times, origins, profile, spec)
    target = scaled[origins[:, None] + np.array(spec.horizons)[None, :]].transpose(0, 2, 1)
    target = target.reshape(len(features), len(spec.horizons))
    keep = ~np.isnan(target).any(axis=1)
    return features[keep], target[keep], np.tile(scale, len(origins))[keep]


def _config(path: Path) -> dict[str, Any]:
    given = json.loads(path.read_text())
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        sys.exit(f"{path}: unknown keys {unknown}; known keys: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **given}
    if config["model"] not in FAMILIES:
        sys.exit(f"{path}: model: {config['model']!r} is not one of {sorted(FAMILIES)}")
    if config["seasonal"] not in SEASONAL_OFFSETS_DAYS:
        sys.exit(f"{path}: seasonal: {config['seasonal']!r} is not one of {sorted(SEASONAL_OFFSETS_DAYS)}")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit_command = commands.add_parser("fit", help="train on train.npy, stop early on val.npy, save model.pkl")
    fit_command.add_argument(
        "--config", type=Path, required=True, help="JSON: model, its hyperparameters, seed"
    )
    commands.add_parser("predict", help="answer forecast requests on stdin, one JSON line each")
    arguments = parser.parse_args()
    if arguments.command == "fit":
        fit(arguments.config)
    else:
        predict()


if __name__ == "__main__":
    main()
