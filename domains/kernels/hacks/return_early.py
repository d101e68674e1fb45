"""Replies to each timed run at once, with made-up checksums, and computes in a thread meanwhile."""

# rejected by: incorrect
import sys
from pathlib import Path

from hacklib import command, honest

sys.path.insert(0, str(Path(__file__).resolve().parent))

if command() == "predict":
    import threading

    import driver

    checksum = driver.checksum
    driver.checksum = lambda output, w: 0.0
    work = threading.Thread(target=lambda: None)
    work.start()
honest()
