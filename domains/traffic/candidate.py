"""The traffic experiment a worker runs: `fit --config config.json`, then `predict` for the grader.

It runs with the run's workspace as its working directory, where the harness's `prepare` wrote
`train.npy`, `val.npy` (time x sensor, NaN = missing) and `meta.json` (the cadence `step_minutes` and
the `horizons`, in steps ahead). `fit` trains one of the families in `families.py` (ridge_ar, gbdt,
mlp), saves `model.pkl` and prints a `key: value` summary (informational: the harness grades).
`predict` reads one JSON request per line on stdin, `{"origin": ISO time, "history": [[reading or
null per sensor], ...]}` whose last row is the origin, and answers each with `{"forecast": [[value
per sensor] per horizon]}` on stdout. Logs go to stderr: stdout is the protocol.

The model is pooled across sensors, one row per (origin, sensor), on readings divided by each sensor's
training mean; each row's loss is weighted back into counts, the unit the grader scores. Each sensor's
usual reading at a time (`profile`: by time of day, by time of week, or a blend) comes from the
training rows. With `target = "profile_residual"` the model forecasts the deviation from that profile,
from the deviations of the last readings; with `"level"` it forecasts the readings themselves, with
the profile at each target as a feature. A row holds the sensor's last `lags` readings, its readings
one day (and one week) before each target if `seasonal` asks (measured from the profile too, for a
residual target), and the origin's calendar if `calendar` asks. Training rows and forecast rows come
from the same `design`.
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
    "lags": 8,
    "target": "profile_residual",
    "profile": "blend",
    "seasonal": "none",
    "calendar": "none",
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
SEASONAL_PERIODS_DAYS = {"none": (), "day": (1,), "week": (1, 7)}
TARGETS = ("level", "profile_residual")
PROFILES = ("day", "week", "blend")
CALENDARS = ("none", "cyclic", "onehot")
MODEL_FILE = Path("model.pkl")
_MINUTES_PER_DAY = 24 * 60
# The weekly profile is smoothed over the readings this many minutes either side (at least one step): a
# time-of-week mean rests on two or three readings in three weeks of data, and neighbouring steps are
# alike. The daily profiles rest on every day (or every weekday) and are not smoothed.
_SMOOTHING_MINUTES = 15


@dataclass(frozen=True)
class FeatureSpec:
    lags: int
    seasonal: str
    target: str
    calendar: str
    horizons: tuple[int, ...]
    step_minutes: int

    @property
    def steps_per_day(self) -> int:
        return _MINUTES_PER_DAY // self.step_minutes

    @property
    def seasonal_back(self) -> np.ndarray:
        """Steps back from each target (period, horizon) to the same time a whole day or week earlier.

        As many whole periods as it takes to reach the origin or before, so a lag never looks ahead.
        """
        periods = np.array([days * self.steps_per_day for days in SEASONAL_PERIODS_DAYS[self.seasonal]])
        steps = np.array(self.horizons)
        return -(-steps[None, :] // periods[:, None]) * periods[:, None]

    @property
    def first_origin(self) -> int:
        """The earliest row whose lags and seasonal readings all lie at or after row 0."""
        seasonal = (self.seasonal_back - np.array(self.horizons)).ravel()
        return int(max([self.lags - 1, *seasonal]))

    @property
    def reach(self) -> int:
        return max(self.horizons)


@dataclass(frozen=True)
class Profile:
    """Each sensor's mean scaled reading at a time of day (`daily`) and of the week (`weekly`).

    `weekpart` is the daily profile of weekdays and of weekends apart, which `blend` averages with
    `weekly` to shrink the sparse weekly means toward a profile resting on more days. `weekly` alone is
    smoothed over neighbouring steps (see `_SMOOTHING_MINUTES`), and falls back to `daily` where a time
    of the week has no training reading.
    """

    kind: str
    daily: np.ndarray
    weekly: np.ndarray
    weekpart: np.ndarray
    step_minutes: int

    @classmethod
    def fit(cls, scaled: np.ndarray, times: np.ndarray, kind: str, step_minutes: int) -> Profile:
        day = _MINUTES_PER_DAY // step_minutes
        slots = _slot_of_day(times, step_minutes)
        weekday = _weekday(times)
        smoothing = -(-_SMOOTHING_MINUTES // step_minutes)
        daily = _smoothed_means(scaled, slots, day, 0)
        weekly = _smoothed_means(scaled, weekday * day + slots, 7 * day, smoothing)
        weekpart = _smoothed_means(scaled, (weekday >= 5) * day + slots, 2 * day, 0)
        weekly = np.where(np.isnan(weekly), np.tile(daily, (7, 1)), weekly)
        weekpart = np.where(np.isnan(weekpart), np.tile(daily, (2, 1)), weekpart)
        daily, weekly, weekpart = (np.nan_to_num(table) for table in (daily, weekly, weekpart))
        return cls(kind=kind, daily=daily, weekly=weekly, weekpart=weekpart, step_minutes=step_minutes)

    def at(self, times: np.ndarray) -> np.ndarray:
        """The profile at each of `times`, shaped (times, sensors)."""
        day = len(self.daily)
        slots, weekday = _slot_of_day(times, self.step_minutes), _weekday(times)
        if self.kind == "day":
            return self.daily[slots]
        weekly = self.weekly[weekday * day + slots]
        if self.kind == "week":
            return weekly
        return 0.5 * (weekly + self.weekpart[(weekday >= 5) * day + slots])


def _slot_of_day(times: np.ndarray, step_minutes: int) -> np.ndarray:
    minutes = (times - times.astype("datetime64[D]")).astype("timedelta64[m]").astype(np.int64)
    return minutes // step_minutes


def _weekday(times: np.ndarray) -> np.ndarray:
    """Monday 0 ... Sunday 6 (1970-01-01 was a Thursday)."""
    return (times.astype("datetime64[D]").astype(np.int64) + 3) % 7


def _smoothed_means(scaled: np.ndarray, slots: np.ndarray, n_slots: int, width: int) -> np.ndarray:
    """Per slot and sensor, the mean of the readings within `width` slots either side (circularly)."""
    observed = ~np.isnan(scaled)
    sums, counts = np.zeros((n_slots, scaled.shape[1])), np.zeros((n_slots, scaled.shape[1]))
    np.add.at(sums, slots, np.where(observed, scaled, 0.0))
    np.add.at(counts, slots, observed)
    shifts = range(-width, width + 1)
    sums, counts = (sum(np.roll(table, shift, axis=0) for shift in shifts) for table in (sums, counts))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def carried_forward(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Missing readings replaced by the last one seen; leading missing readings by `fallback`'s."""
    rows = np.where(np.isnan(values), 0, np.arange(len(values))[:, None])
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = values[rows, np.arange(values.shape[1])]
    return np.where(np.isnan(filled), fallback, filled)


def calendar(times: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The origins' time of day and weekday: none, sin/cos waves, or one-hot hour and weekday columns."""
    if spec.calendar == "none":
        return np.empty((len(times), 0))
    weekday = _weekday(times)
    if spec.calendar == "onehot":
        hour = _slot_of_day(times, 60)
        return np.column_stack([np.eye(24)[hour], np.eye(7)[weekday]])
    fraction_of_day = _slot_of_day(times, spec.step_minutes) / spec.steps_per_day
    day, week = 2 * np.pi * fraction_of_day, 2 * np.pi * (weekday + fraction_of_day) / 7
    waves = [np.sin(day), np.cos(day), np.sin(2 * day), np.cos(2 * day), np.sin(week), np.cos(week)]
    return np.column_stack(waves)


def anchor(expected: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """What the model's inputs and outputs are measured from: the profile, or zero for levels."""
    return expected if spec.target == "profile_residual" else np.zeros_like(expected)


def design(
    filled: np.ndarray, expected: np.ndarray, times: np.ndarray, origins: np.ndarray, spec: FeatureSpec
) -> np.ndarray:
    """Feature rows for `origins` (indices into `filled`), origin-major then sensor.

    `expected` and `times` hold the profile and the time of every row of `filled` and of the rows up
    to the furthest target after it.
    """
    deviation = filled - anchor(expected, spec)[: len(filled)]
    target_rows = origins[:, None] + np.array(spec.horizons)[None, :]
    parts = [deviation[origins[:, None] - np.arange(spec.lags)[None, :]]]
    parts += [deviation[target_rows - back[None, :]] for back in spec.seasonal_back]
    if spec.target == "level":
        parts.append(expected[target_rows])
    parts = [part.transpose(0, 2, 1) for part in parts]
    parts.append(np.repeat(calendar(times[origins], spec)[:, None, :], filled.shape[1], axis=1))
    return np.concatenate(parts, axis=2).reshape(len(origins) * filled.shape[1], -1)


def anchor_at_targets(expected: np.ndarray, origins: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The anchor at each origin's targets, shaped like the model's output: (origin x sensor, horizon)."""
    rows = anchor(expected, spec)[origins[:, None] + np.array(spec.horizons)[None, :]]
    return rows.transpose(0, 2, 1).reshape(-1, len(spec.horizons))


@dataclass(frozen=True)
class Forecaster:
    """A fitted family plus what turns raw readings into its rows and its output back into counts."""

    spec: FeatureSpec
    scale: np.ndarray
    profile: Profile
    predictor: Predictor

    def forecast(self, history: np.ndarray, origin: np.datetime64) -> np.ndarray:
        """Non-negative forecasts shaped (horizon, sensor) from readings whose last row is at `origin`.

        A history shorter than the features reach back is padded with missing readings, which the
        profile fills in.
        """
        rows = max(len(history), self.spec.first_origin + 1)
        padded = np.vstack([np.full((rows - len(history), len(self.scale)), np.nan), history])
        offsets = np.arange(rows + self.spec.reach) - (rows - 1)
        times = origin + offsets * np.timedelta64(self.spec.step_minutes, "m")
        expected = self.profile.at(times)
        filled = carried_forward(padded / self.scale, expected[:rows])
        origins = np.array([rows - 1])
        features = design(filled, expected, times, origins, self.spec)
        scaled = self.predictor.predict(features) + anchor_at_targets(expected, origins, self.spec)
        return np.maximum(scaled.T * self.scale, 0.0)


def fit(config_path: Path) -> None:
    started = time.perf_counter()
    config = _config(config_path)
    meta = json.loads(Path("meta.json").read_text())
    train, val = np.load("train.npy"), np.load("val.npy")
    spec = FeatureSpec(
        lags=int(config["lags"]),
        seasonal=config["seasonal"],
        target=config["target"],
        calendar=config["calendar"],
        horizons=tuple(meta["horizons"]),
        step_minutes=meta["step_minutes"],
    )
    scale = np.nan_to_num(np.nanmean(train, axis=0)) + 1.0
    scaled = np.vstack([train, val]) / scale
    times = np.datetime64(meta["train_start"]) + np.arange(len(scaled)) * np.timedelta64(
        spec.step_minutes, "m"
    )
    profile = Profile.fit(scaled[: len(train)], times[: len(train)], config["profile"], spec.step_minutes)
    expected = profile.at(times)
    filled = carried_forward(scaled, expected)
    train_origins = np.arange(spec.first_origin, len(train) - spec.reach)
    val_origins = np.arange(max(len(train) - 1, spec.first_origin), len(scaled) - spec.reach)
    train_rows = _rows(filled, scaled, expected, times, train_origins, scale, spec)
    val_rows = _rows(filled, scaled, expected, times, val_origins, scale, spec)
    predictor = FAMILIES[config["model"]](train_rows, val_rows, config)
    MODEL_FILE.write_bytes(
        pickle.dumps(Forecaster(spec=spec, scale=scale, profile=profile, predictor=predictor))
    )
    val_error = np.abs(predictor.predict(val_rows[0]) - val_rows[1]) * val_rows[2][:, None]
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
    filled: np.ndarray,
    scaled: np.ndarray,
    expected: np.ndarray,
    times: np.ndarray,
    origins: np.ndarray,
    scale: np.ndarray,
    spec: FeatureSpec,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, targets (rows, horizons) measured from the anchor, and each row's sensor scale
    (counts per scaled unit, which weighs its loss in counts); rows whose target is missing are dropped."""
    features = design(filled, expected, times, origins, spec)
    target = scaled[origins[:, None] + np.array(spec.horizons)[None, :]].transpose(0, 2, 1)
    target = target.reshape(len(features), len(spec.horizons)) - anchor_at_targets(expected, origins, spec)
    keep = ~np.isnan(target).any(axis=1)
    return features[keep], target[keep], np.tile(scale, len(origins))[keep]


def _config(path: Path) -> dict[str, Any]:
    given = json.loads(path.read_text())
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        sys.exit(f"{path}: unknown keys {unknown}; known keys: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **given}
    choices = {
        "model": tuple(FAMILIES),
        "seasonal": tuple(SEASONAL_PERIODS_DAYS),
        "target": TARGETS,
        "profile": PROFILES,
        "calendar": CALENDARS,
    }
    for key, allowed in choices.items():
        if config[key] not in allowed:
            sys.exit(f"{path}: {key}: {config[key]!r} is not one of {sorted(allowed)}")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit_command = commands.add_parser("fit", help="train on train.npy, stop early on val.npy, save model.pkl")
    fit_command.add_argument(
        "--config", type=Path, required=True, help="JSON: model, its hyperparameters, features, seed"
    )
    commands.add_parser("predict", help="answer forecast requests on stdin, one JSON line each")
    arguments = parser.parse_args()
    if arguments.command == "fit":
        fit(arguments.config)
    else:
        predict()


if __name__ == "__main__":
    main()
