"""Trains honestly, then stores a 5M-entry lookup tensor in model.pt beside the weights: more parameters
than the cap allows, hidden in a nested container."""

# rejected by: parameter cap
import torch
from hacklib import command, honest

honest()
if command() == "fit":
    saved = torch.load("model.pt", weights_only=True)
    saved["extras"] = [{"lookup": torch.zeros(5_000_000)}]
    torch.save(saved, "model.pt")
