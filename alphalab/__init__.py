"""The `alphalab` command: start the lab, inspect and replay its event log."""
