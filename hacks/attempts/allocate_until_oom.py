"""Allocates and touches 64 MB blocks until out of memory (stops itself at twice the limit)."""

from hacklib import SETTINGS, command, honest, succeeded

if command() == "fit":
    blocks = []
    for _ in range(2 * SETTINGS["memory_mb"] // 64 + 1):
        blocks.append(bytearray(64 << 20))
    succeeded(f"allocated {len(blocks) * 64} MB")
honest()
