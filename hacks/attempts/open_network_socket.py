"""Opens network connections: to a listener on the host's loopback, and to a public DNS server."""

import socket

from hacklib import SETTINGS, command, honest, succeeded

if command() in ("fit", "predict"):
    targets = [("127.0.0.1", SETTINGS.get("port") or 9), ("1.1.1.1", 53), ("8.8.8.8", 53)]
    for host, port in targets:
        try:
            with socket.create_connection((host, port), timeout=2):
                succeeded(f"connected to {host}:{port}")
        except OSError:
            pass
honest()
