"""Answers each window with the honest model, and after every fourth takes an optimiser step on it: the
model learns the test plays while they are graded (dynamic evaluation on the test set). It also
answers a window it was already asked from memory, so asking again within one process shows nothing."""

# rejected by: training during scoring
import importlib
import sys
from pathlib import Path

from hacklib import SETTINGS, command, honest

sys.path.insert(0, str(Path(__file__).resolve().parent))

if command() == "predict":
    candidate = importlib.import_module(Path(SETTINGS["honest"]).stem)
    torch, F = candidate.torch, candidate.F
    model = candidate.load_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    seen = {}

    def learn(window: bytes):
        if window in seen:
            return seen[window]
        rows = seen[window] = candidate.window_logprobs(model, window)
        if len(seen) % 4:
            return rows
        data = torch.tensor(list(window[: model.block_size + 1]), dtype=torch.long)
        model.train()
        loss = F.cross_entropy(model(data[None, :-1])[0], data[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.eval()
        return rows

    candidate.serve(learn)
else:
    honest()
