"""The lm_speedrun candidate: a nanoGPT-style byte-level GPT trained for a wall-clock budget.

    python candidate.py fit --config config.json   # trains on train.txt, saves model.pt
    python candidate.py predict                    # answers {"window": b64} with {"logprobs": b64}

The model reads bytes (0-255) plus a start token BOS (256) and predicts the next byte. Half of each
training batch starts at BOS (a window's first byte is predicted from nothing), half mid-text (what the
sliding window sees beyond `block_size`). Training stops on the clock, not after a number of steps:
`fit_seconds` after the process started (a slow start costs steps, not the run), and the schedule
(warmup, then cosine / linear / constant) runs over the fraction of that time spent.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

STARTED = time.monotonic()  # before importing torch: a slow start under load is part of the fit's time

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model.pt"
BOS = 256
DEFAULTS = {
    "n_layer": 2,
    "n_embd": 128,
    "n_head": 4,
    "block_size": 64,
    "batch_size": 8,
    "learning_rate": 3e-3,
    "schedule": "cosine",
    "warmup": 0.05,
    "weight_decay": 0.1,
    "dropout": 0.0,
    "fit_seconds": 9.0,
    "threads": 1,
    "seed": 0,
}
# What fit needs after training (the validation pass, saving), in seconds, with room for a loaded
# machine: training is cut so that fit ends inside the run's limit even when the config asks for more.
AFTER_TRAINING_SECONDS = 8.0
VAL_WINDOWS = 8


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.qkv, self.proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Pre-LN transformer over bytes; logits over the 256 byte values at every position."""

    def __init__(self, n_layer: int, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        self.block_size = block_size
        self.tokens = nn.Embedding(257, n_embd)
        self.positions = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, 256, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.tokens(idx) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def shape_of(config: dict) -> dict:
    return {k: int(config[k]) for k in ("n_layer", "n_embd", "n_head", "block_size")}


def threads(config: dict) -> int:
    """The config's thread count, at most the CPUs this process may run on. The default is one: on a
    shared 2-core host, two threads in the sandbox once trained 40x slower than one."""
    return max(1, min(int(config["threads"]), len(os.sched_getaffinity(0))))


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def training_deadline(config: dict, meta: dict) -> float:
    """When training stops (time.monotonic): `fit_seconds` after the start, cut to end the fit inside
    the run's limit (meta.json's run_seconds, and a CPU-time limit where one is set: it counts every
    thread's time)."""
    limits = [float(config["fit_seconds"]), float(meta.get("run_seconds", math.inf)) - AFTER_TRAINING_SECONDS]
    soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft / threads(config) - AFTER_TRAINING_SECONDS)
    return STARTED + max(1.0, min(limits))


def batch(data: torch.Tensor, size: int, block: int, generator: torch.Generator):
    """`size` sequences of `block` inputs and targets; the first half start at BOS."""
    starts = torch.randint(0, len(data) - block - 1, (size,), generator=generator)
    rows = torch.stack([data[s : s + block + 1] for s in starts.tolist()])
    x, y = rows[:, :-1].clone(), rows[:, 1:].clone()
    half = size // 2
    x[:half, 0] = BOS
    x[:half, 1:], y[:half] = rows[:half, :-2], rows[:half, :-1]
    return x, y


def learning_rate(config: dict, progress: float) -> float:
    peak, warmup = float(config["learning_rate"]), float(config["warmup"])
    if progress < warmup:
        return peak * (progress / warmup)
    rest = (progress - warmup) / max(1e-9, 1 - warmup)
    if config["schedule"] == "cosine":
        return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, rest))))
    if config["schedule"] == "linear":
        return peak * max(0.1, 1 - rest)
    return peak


def optimizer(model: GPT, config: dict) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": float(config["weight_decay"])},
              {"params": other, "weight_decay": 0.0}]  # fmt: skip
    return torch.optim.AdamW(groups, lr=float(config["learning_rate"]), betas=(0.9, 0.95))


def fit(config_path: str) -> None:
    config = {**DEFAULTS, **json.loads(Path(config_path).read_text())}
    meta = json.loads((HERE / "meta.json").read_text())
    torch.manual_seed(int(config["seed"]))
    torch.set_num_threads(threads(config))
    generator = torch.Generator().manual_seed(int(config["seed"]))
    data = torch.from_numpy(np.frombuffer((HERE / "train.txt").read_bytes(), dtype=np.uint8).astype(np.int64))
    model = GPT(**shape_of(config), dropout=float(config["dropout"])).to(device())
    params = sum(p.numel() for p in model.parameters())
    if params > meta["param_cap"]:
        sys.exit(f"fit: {params:,} parameters exceed the cap of {meta['param_cap']:,}; shrink the model")
    opt = optimizer(model, config)
    deadline = training_deadline(config, meta)
    begun, steps, loss = time.monotonic(), 0, float("nan")
    seconds = max(1e-3, deadline - begun)
    model.train()
    while (elapsed := time.monotonic() - begun) < seconds:
        for group in opt.param_groups:
            group["lr"] = learning_rate(config, elapsed / seconds)
        x, y = batch(data, int(config["batch_size"]), int(config["block_size"]), generator)
        logits = model(x.to(device()))
        loss_t = F.cross_entropy(logits.reshape(-1, 256), y.to(device()).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps, loss = steps + 1, float(loss_t.detach())
    model.eval()
    tokens = steps * int(config["batch_size"]) * int(config["block_size"])
    print(f"params: {params}\nsteps: {steps}\ntrain_seconds: {seconds:.1f}\ntokens: {tokens}\n"
          f"tokens_per_second: {tokens / max(1e-9, seconds):.0f}\ntrain_loss_bpb: {loss / math.log(2):.4f}",
          file=sys.stderr)  # fmt: skip
    torch.save({"config": shape_of(config), "state_dict": model.state_dict()}, MODEL)
    print(f"val_bpb: {validation_bpb(model, (HERE / 'val.txt').read_bytes(), int(meta['window'])):.4f}",
          file=sys.stderr)  # fmt: skip


def validation_bpb(model: GPT, val: bytes, window: int) -> float:
    rng = np.random.default_rng(0)
    total, count = 0.0, 0
    for _ in range(VAL_WINDOWS):
        offset = int(rng.integers(0, len(val) - window))
        chunk = val[offset : offset + window]
        rows = window_logprobs(model, chunk)
        total -= float(rows[np.arange(window), np.frombuffer(chunk, dtype=np.uint8)].sum())
        count += window
    return total / count / math.log(2)


@torch.no_grad()
def window_logprobs(model: GPT, window: bytes) -> np.ndarray:
    """W×256 float32: row i = log P(x_i | x_<i). Beyond `block_size` a sliding window with a stride of
    half a block, so every row sees at least half a block of context; all passes in one batch."""
    block, size = model.block_size, len(window)
    inputs = torch.tensor([BOS, *window[:-1]], dtype=torch.long, device=device())
    if size <= block:
        return F.log_softmax(model(inputs[None])[0].float(), dim=-1).cpu().numpy().astype("<f4")
    ends = sorted({*range(block, size, max(1, block // 2)), size})
    logits = model(torch.stack([inputs[end - block : end] for end in ends]))
    rows = [logits[0]] + [logits[k, -(end - ends[k - 1]) :] for k, end in enumerate(ends) if k]
    return F.log_softmax(torch.cat(rows).float(), dim=-1).cpu().numpy().astype("<f4")


def load_model(path: Path = MODEL) -> GPT:
    saved = torch.load(path, map_location=device(), weights_only=True)
    model = GPT(**saved["config"]).to(device())
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def serve(answer) -> None:
    """One JSON line in, one out: `answer(window bytes)` gives the W×256 float32 log-probabilities."""
    for line in sys.stdin:
        window = base64.b64decode(json.loads(line)["window"])
        rows = np.ascontiguousarray(answer(window), dtype="<f4")
        print(json.dumps({"logprobs": base64.b64encode(rows.tobytes()).decode()}), flush=True)


def predict() -> None:
    torch.set_num_threads(1)  # the step's CPU-time limit counts every thread
    model = load_model()
    serve(lambda window: window_logprobs(model, window))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["fit", "predict"])
    parser.add_argument("--config", default="config.json")
    arguments = parser.parse_args()
    fit(arguments.config) if arguments.command == "fit" else predict()
