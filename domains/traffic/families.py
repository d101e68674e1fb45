"""The three model families a traffic candidate fits: ridge_ar, gbdt and mlp.

Each maps feature rows (from `candidate.design`) to one scaled forecast per horizon (direct
multi-horizon forecasting: ridge_ar and mlp have one output per horizon, gbdt one model per horizon),
and gets the validation rows too: gbdt and mlp stop early on them. Every row comes with its sensor's
scale, counts per scaled unit: each family weighs its loss by it, so that it fits the errors in counts
that the grader scores rather than letting near-empty detectors, noisy in relative terms, dominate.
Fitted models keep only numpy arrays, so the predict step imports neither sklearn nor torch and
answers the grader quickly; torch is imported only while an mlp trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["FAMILIES", "Predictor"]

BATCH_ROWS = 1024
# gbdt trains on at most this many rows, with 63 bins per feature (split search dominates its cost, and
# counts take few distinct values anyway): the slowest corner of the search space stays ~4 s a horizon.
GBDT_MAX_ROWS = 12_000
GBDT_BINS = 63
Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # features, targets (rows, horizons), sensor scale


class Predictor(Protocol):
    """A fitted family: feature rows in, scaled forecasts shaped (rows, horizons) out."""

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
    """Closed-form ridge on standardized features, one output per horizon; the intercept is not shrunk.

    Squared errors in counts: each row weighs its scale squared (normalized to a mean of one, so that
    `ridge_alpha` means the same whatever the counts' size).
    """
    mean, std = train[0].mean(axis=0), train[0].std(axis=0) + 1e-8
    features = np.column_stack([(train[0] - mean) / std, np.ones(len(train[0]))])
    weighted = features * (train[2] ** 2 / np.mean(train[2] ** 2))[:, None]
    penalty = float(config["ridge_alpha"]) * np.eye(features.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(weighted.T @ features + penalty, weighted.T @ train[1])
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
    """One HistGradientBoostingRegressor per horizon (direct forecasting), early-stopped on validation;
    absolute errors in counts (rows weighted by their scale)."""
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
        model.fit(
            train[0][chosen],
            train[1][chosen, horizon],
            sample_weight=train[2][chosen],
            X_val=val[0],
            y_val=val[1][:, horizon],
            sample_weight_val=val[2],
        )
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
    """AdamW on L1 loss in counts (rows weighted by their scale), one thread, seeded; keeps the epoch with
    the lowest validation loss."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(int(config["seed"]))
    mean, std = train[0].mean(axis=0), train[0].std(axis=0) + 1e-8
    unit = float(np.mean(train[2]))
    arrays = ((train[0] - mean) / std, train[1], train[2][:, None] / unit, (val[0] - mean) / std, val[1])
    x_train, y_train, w_train, x_val, y_val = (torch.tensor(array, dtype=torch.float32) for array in arrays)
    w_val = torch.tensor(val[2][:, None] / unit, dtype=torch.float32)
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
            loss = ((network(x_train[batch]) - y_train[batch]).abs() * w_train[batch]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = float(((network(x_val) - y_val).abs() * w_val).mean())
        if val_loss < best_loss:
            linear = [module for module in network if isinstance(module, torch.nn.Linear)]
            best_loss = val_loss
            best_layers = tuple(
                (layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()) for layer in linear
            )
    return Network(layers=best_layers, mean=mean, std=std)


FAMILIES = {"ridge_ar": fit_ridge_ar, "gbdt": fit_gbdt, "mlp": fit_mlp}
