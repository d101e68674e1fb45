"""The experiment: `fit --config config.json` trains a softmax classifier, `predict` answers the grader.

`fit` reads `train_x.npy`, `train_y.npy`, `val_x.npy`, `val_y.npy` and `meta.json` from the workspace
(its working directory), trains by full-batch gradient descent (optionally with one hidden tanh
layer), keeps the epoch with the best validation loss and saves `model.npz`. `predict` reads one JSON
line per request on stdin, `{"rows": [[feature or null, ...], ...]}`, and answers each with one line
`{"probabilities": [[p per class] per row]}`. Logs go to stderr; stdout is the protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DEFAULTS = {"learning_rate": 0.1, "l2": 0.0001, "epochs": 200, "hidden": 16, "seed": 0}


def fit(config_path: Path) -> None:
    config = {**DEFAULTS, **json.loads(config_path.read_text())}
    rng = np.random.default_rng(int(config["seed"]))
    x, y = np.load("train_x.npy"), np.load("train_y.npy")
    vx, vy = np.load("val_x.npy"), np.load("val_y.npy")
    classes = len(json.loads(Path("meta.json").read_text())["classes"])
    mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0) + 1e-9
    x, vx = _standard(x, mean, std), _standard(vx, mean, std)
    hidden = int(config["hidden"])
    weights = _initial(rng, x.shape[1], hidden, classes)
    best, best_loss = weights, np.inf
    for _ in range(int(config["epochs"])):
        gradients = _gradients(weights, x, np.eye(classes)[y], float(config["l2"]))
        weights = {k: w - float(config["learning_rate"]) * gradients[k] for k, w in weights.items()}
        loss = -np.mean(np.log(_forward(weights, vx)[np.arange(len(vy)), vy] + 1e-12))
        if loss < best_loss:
            best, best_loss = weights, loss
    accuracy = float(np.mean(_forward(best, vx).argmax(axis=1) == vy))
    np.savez("model.npz", mean=mean, std=std, **best)
    print(f"val_log_loss: {best_loss:.4f}\nval_accuracy: {accuracy:.4f}", file=sys.stderr)


def predict() -> None:
    saved = np.load("model.npz")
    mean, std = saved["mean"], saved["std"]
    weights = {k: saved[k] for k in saved.files if k not in ("mean", "std")}
    for line in sys.stdin:
        rows = np.array(json.loads(line)["rows"], dtype=float)
        probabilities = _forward(weights, _standard(rows, mean, std))
        print(json.dumps({"probabilities": probabilities.tolist()}), flush=True)


def _standard(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.nan_to_num((x - mean) / std)


def _initial(rng: np.random.Generator, inputs: int, hidden: int, classes: int) -> dict[str, np.ndarray]:
    if hidden == 0:
        return {"w2": np.zeros((inputs, classes)), "b2": np.zeros(classes)}
    return {
        "w1": rng.normal(0, 1 / np.sqrt(inputs), (inputs, hidden)), "b1": np.zeros(hidden),
        "w2": rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes)), "b2": np.zeros(classes),
    }  # fmt: skip


def _forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    hidden = np.tanh(x @ weights["w1"] + weights["b1"]) if "w1" in weights else x
    logits = hidden @ weights["w2"] + weights["b2"]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _gradients(
    weights: dict[str, np.ndarray], x: np.ndarray, onehot: np.ndarray, l2: float
) -> dict[str, np.ndarray]:
    hidden = np.tanh(x @ weights["w1"] + weights["b1"]) if "w1" in weights else x
    error = (_forward(weights, x) - onehot) / len(x)
    gradients = {"w2": hidden.T @ error + l2 * weights["w2"], "b2": error.sum(axis=0)}
    if "w1" in weights:
        back = (error @ weights["w2"].T) * (1 - hidden**2)
        gradients |= {"w1": x.T @ back + l2 * weights["w1"], "b1": back.sum(axis=0)}
    return gradients


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fit").add_argument("--config", type=Path, required=True)
    commands.add_parser("predict")
    arguments = parser.parse_args()
    fit(arguments.config) if arguments.command == "fit" else predict()


if __name__ == "__main__":
    main()
