"""The traffic experiment, the one file a run may change: `fit --config config.json`, then `predict`.

It runs with the run's workspace as its working directory, where the harness's `prepare` wrote
`train.npy`, `val.npy` (time x sensor, NaN = missing) and `meta.json`. `fit` trains one of three
families (ridge_ar, gbdt, mlp), saves `model.pkl` and prints a `key: value` summary (informational:
the harness grades). `predict` reads one JSON request per line on stdin, `{"origin": ISO time,
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
from typing import Any, Protocol

import numpy as np

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
BATCH_ROWS = 1024
# gbdt trains on at most this many rows, with 63 bins per feature (split search dominates its cost, and
# counts take few distinct values anyway): the slowest corner of the search space stays ~2 s a horizon.
GBDT_MAX_ROWS = 12_000
GBDT_BINS = 63
Rows = tuple[np.ndarray, np.ndarray]


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
    return (times - times.astype("datetime64[D]")).astype("timedelta64[m]").astype(np.int64) // spec.step_minutes


def daily_profile(scaled: np.ndarray, times: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Each sensor's mean scaled reading per step of the day, shape (steps_per_day, sensors)."""
    slots = slot_of_day(times, spec)
    sums = np.zeros((spec.steps_per_day, scaled.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, slots, np.nan_to_num(scaled))
    np.add.at(counts, slots, ~np.isnan(scaled))
    return sums / np.maximum(counts, 1)


def design(filled: np.ndarray, times: np.ndarray, origins: np.ndarray, profile: np.ndarray, spec: FeatureSpec):
    """Feature rows for `origins` (indices into `filled` and `times`), origin-major then sensor."""
    steps = np.array(spec.horizons)
    parts = [filled[origins[:, None] - np.arange(spec.lags)[None, :]].transpose(0, 2, 1)]
    parts += [filled[origins[:, None] + steps[None, :] - offset].transpose(0, 2, 1) for offset in spec.offsets]
    slot = slot_of_day(times[origins], spec)
    parts.append(profile[(slot[:, None] + steps[None, :]) % spec.steps_per_day].transpose(0, 2, 1))
    angle = 2 * np.pi * slot / spec.steps_per_day
    weekday = (times[origins].astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    calendar = np.column_stack([np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle), np.eye(7)[weekday]])
    parts.append(np.repeat(calendar[:, None, :], filled.shape[1], axis=1))
    return np.concatenate(parts, axis=2).reshape(len(origins) * filled.shape[1], -1)


class Predictor(Protocol):
    def predict(self, features: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Linear:
    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        standard = (features - self.mean) / self.std
        return np.column_stack([standard, np.ones(len(standard))]) @ self.weights


def fit_ridge_ar(train: Rows, val: Rows, config: dict) -> Linear:
    """Closed-form ridge on standardized features, one output per horizon; the intercept is not shrunk."""
    mean, std = train[0].mean(axis=0), train[0].std(axis=0) + 1e-8
    features = np.column_stack([(train[0] - mean) / std, np.ones(len(train[0]))])
    penalty = float(config["ridge_alpha"]) * np.eye(features.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(features.T @ features + penalty, features.T @ train[1])
    return Linear(weights=weights, mean=mean, std=std)


@dataclass(frozen=True)
class Trees:
    """Boosted trees flattened into node arrays, so forecasting walks all of them at once without sklearn.

    `roots[t]` starts tree t, which adds to output `horizon[t]`; leaf values already hold the shrinkage.
    """

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    depth: int
    roots: np.ndarray
    horizon: np.ndarray
    baseline: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        node = np.repeat(self.roots[:, None], len(features), axis=1)
        rows = np.arange(len(features))[None, :]
        for _level in range(self.depth):
            reading = features[rows, self.feature[node]]
            go_left = np.where(np.isnan(reading), self.missing_left[node], reading <= self.threshold[node])
            node = np.where(self.is_leaf[node], node, np.where(go_left, self.left[node], self.right[node]))
        totals = np.zeros((len(self.baseline), len(features)))
        np.add.at(totals, self.horizon, self.value[node])
        return totals.T + self.baseline


def fit_gbdt(train: Rows, val: Rows, config: dict) -> Trees:
    """One HistGradientBoostingRegressor per horizon (direct forecasting), early-stopped on validation."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    chosen = np.random.default_rng(int(config["seed"])).permutation(len(train[0]))[:GBDT_MAX_ROWS]
    models = []
    for horizon in range(train[1].shape[1]):
        model = HistGradientBoostingRegressor(
            loss="absolute_error",
            learning_rate=float(config["gbdt_learning_rate"]),
            max_iter=int(config["gbdt_max_iter"]),
            max_leaf_nodes=int(config["gbdt_max_leaf_nodes"]),
            max_bins=GBDT_BINS,
            early_stopping=True,
            n_iter_no_change=10,
            random_state=int(config["seed"]),
        )
        model.fit(train[0][chosen], train[1][chosen, horizon], X_val=val[0], y_val=val[1][:, horizon])
        models.append(model)
    trees = _flattened(models)
    expected = np.column_stack([model.predict(val[0]) for model in models])
    if not np.allclose(trees.predict(val[0]), expected, atol=1e-6):
        raise RuntimeError("the flattened trees disagree with sklearn's predict; its tree layout has changed")
    return trees


def _flattened(models: list[Any]) -> Trees:
    """Every tree's nodes (sklearn's private `_predictors`) in one table, child indices made global."""
    tables, roots, horizon, offset = [], [], [], 0
    for output, model in enumerate(models):
        for (tree,) in model._predictors:
            table = tree.nodes.copy()
            table["left"] += offset
            table["right"] += offset
            tables.append(table)
            roots.append(offset)
            horizon.append(output)
            offset += len(table)
    nodes = np.concatenate(tables)
    return Trees(
        feature=nodes["feature_idx"].astype(np.intp),
        threshold=nodes["num_threshold"],
        missing_left=nodes["missing_go_to_left"].astype(bool),
        left=nodes["left"].astype(np.intp),
        right=nodes["right"].astype(np.intp),
        is_leaf=nodes["is_leaf"].astype(bool),
        value=nodes["value"],
        depth=int(nodes["depth"].max()),
        roots=np.array(roots),
        horizon=np.array(horizon),
        baseline=np.array([float(model._baseline_prediction.ravel()[0]) for model in models]),
    )


@dataclass(frozen=True)
class Network:
    """A ReLU MLP's weights as numpy arrays, so forecasting needs no torch."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    mean: np.ndarray
    std: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        hidden = (features - self.mean) / self.std
        for index, (weight, bias) in enumerate(self.layers):
            hidden = hidden @ weight.T + bias
            hidden = np.maximum(hidden, 0.0) if index < len(self.layers) - 1 else hidden
        return hidden


def fit_mlp(train: Rows, val: Rows, config: dict) -> Network:
    """AdamW on L1 loss, one thread, seeded; keeps the epoch with the lowest validation loss."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(int(config["seed"]))
    mean, std = train[0].mean(axis=0), train[0].std(axis=0) + 1e-8
    arrays = ((train[0] - mean) / std, train[1], (val[0] - mean) / std, val[1])
    x_train, y_train, x_val, y_val = (torch.tensor(array, dtype=torch.float32) for array in arrays)
    sizes = [x_train.shape[1], *[int(config["mlp_hidden"])] * int(config["mlp_layers"]), y_train.shape[1]]
    blocks: list[Any] = []
    for width_in, width_out in zip(sizes[:-1], sizes[1:], strict=True):
        blocks += [torch.nn.Linear(width_in, width_out), torch.nn.ReLU()]
    network = torch.nn.Sequential(*blocks[:-1])
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=float(config["mlp_lr"]), weight_decay=float(config["mlp_weight_decay"])
    )
    best_loss, best_layers = float("inf"), ()
    for _epoch in range(int(config["mlp_epochs"])):
        for batch in torch.randperm(len(x_train)).split(BATCH_ROWS):
            loss = (network(x_train[batch]) - y_train[batch]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = float((network(x_val) - y_val).abs().mean())
        if val_loss < best_loss:
            linear = [module for module in network if isinstance(module, torch.nn.Linear)]
            best_loss = val_loss
            best_layers = tuple((layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()) for layer in linear)
    return Network(layers=best_layers, mean=mean, std=std)


FAMILIES = {"ridge_ar": fit_ridge_ar, "gbdt": fit_gbdt, "mlp": fit_mlp}


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
    times = np.datetime64(meta["train_start"]) + np.arange(len(scaled)) * np.timedelta64(spec.step_minutes, "m")
    profile = daily_profile(scaled[: len(train)], times[: len(train)], spec)
    reach = max(spec.horizons)
    train_origins = np.arange(spec.first_origin, len(train) - reach)
    val_origins = np.arange(max(len(train) - 1, spec.first_origin), len(scaled) - reach)
    *train_rows, _ = _rows(scaled, scale, times, train_origins, profile, spec)
    *val_rows, val_scale = _rows(scaled, scale, times, val_origins, profile, spec)
    predictor = FAMILIES[config["model"]](tuple(train_rows), tuple(val_rows), config)
    MODEL_FILE.write_bytes(pickle.dumps(Forecaster(spec=spec, scale=scale, profile=profile, predictor=predictor)))
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
        forecast = forecaster.forecast(np.array(request["history"], dtype=float), np.datetime64(request["origin"]))
        sys.stdout.write(json.dumps({"forecast": np.round(forecast, 3).tolist()}) + "\n")
        sys.stdout.flush()


def _rows(scaled, scale, times, origins, profile, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, scaled targets (rows, horizons) and each row's sensor scale; rows missing a target
    are dropped."""
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
    fit_command.add_argument("--config", type=Path, required=True, help="JSON: model, its hyperparameters, seed")
    commands.add_parser("predict", help="answer forecast requests on stdin, one JSON line each")
    arguments = parser.parse_args()
    if arguments.command == "fit":
        fit(arguments.config)
    else:
        predict()


if __name__ == "__main__":
    main()
