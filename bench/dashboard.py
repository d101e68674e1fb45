"""Dashboard benchmark: how long the page takes to show a campaign of 10,000 experiments, and what it sends.

    .venv/bin/python bench/dashboard.py [--experiments 10000]

A synthetic campaign (bench/ledger.py's: 7 events per experiment, playbook revisions, LLM calls) is
written to a ledger (not timed), then the real `alphalab dashboard --home` is started on it and
measured from outside, the way a user meets it:

1. start          from launching the process until it answers (reading and folding the whole ledger)
2. first message  the stream's first server-sent event (the page and the last log lines): time, bytes
3. browser        headless Chromium (Debian's `chromium`) from navigation until the kanban, the
                  leaderboard and the progress plot are drawn
4. time travel    the page as of the middle of the log (`?at=`), folded again from the log: time, bytes
"""

# ruff: noqa: E402  (the repository root goes on sys.path before the bench helpers are imported)
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from playwright.sync_api import sync_playwright
from rich.console import Console
from rich.table import Table

from bench.ledger import CAMPAIGN, write_campaign

EVENTS_PER_EXPERIMENT = 7
ALPHALAB = str(Path(sys.executable).with_name("alphalab"))


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _first_message(url: str) -> tuple[float, int]:
    began = time.perf_counter()
    with httpx.stream("GET", url, timeout=120) as response:
        size = 0
        for line in response.iter_lines():
            size += len(line) + 1
            if not line and size > 1:
                return time.perf_counter() - began, size
    raise RuntimeError("the stream ended before its first message")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=10_000)
    args = parser.parse_args()
    events = args.experiments * EVENTS_PER_EXPERIMENT
    chromium = shutil.which("chromium")
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        write_campaign(home / "ledger.duckdb", events)
        port = _port()
        url = f"http://127.0.0.1:{port}"
        began = time.perf_counter()
        server = subprocess.Popen(
            [ALPHALAB, "dashboard", "--home", str(home), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    httpx.get(url + "/", timeout=1)
                    break
                except httpx.HTTPError:
                    assert server.poll() is None, "the dashboard exited"
                    time.sleep(0.05)
            rows.append(
                (
                    "start (read + fold the ledger)",
                    f"{time.perf_counter() - began:.2f} s",
                    f"{events:,} events",
                )
            )
            seconds, size = _first_message(f"{url}/api/campaigns/{CAMPAIGN}/stream")
            rows.append(("first stream message", f"{seconds:.3f} s", f"{size / 1e3:,.0f} kB"))
            if chromium:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    began = time.perf_counter()
                    page.goto(f"{url}/#/campaign/{CAMPAIGN}")
                    page.wait_for_selector("[data-column=analyzed] .card")
                    page.wait_for_selector("#leaderboard tbody tr")
                    page.wait_for_selector("#progress [data-series=best]", state="attached")
                    drawn = time.perf_counter() - began
                    statics = sum(len(httpx.get(url + path).content) for path in
                                  ("/", "/static/app.js", "/static/app.css"))  # fmt: skip
                    rows.append(
                        ("browser: page drawn", f"{drawn:.2f} s", f"+ {statics / 1e3:.0f} kB page and script")
                    )
            else:
                rows.append(("browser: page drawn", "skipped", "install Debian's chromium"))
            began = time.perf_counter()
            travelled = httpx.get(f"{url}/api/campaigns/{CAMPAIGN}", params={"at": events // 2}, timeout=120)
            seconds = time.perf_counter() - began
            rows.append(
                ("time travel to the middle", f"{seconds:.2f} s", f"{len(travelled.content) / 1e3:,.0f} kB")
            )
        finally:
            server.terminate()
            server.wait(10)
    table = Table(title=f"dashboard on a campaign of {args.experiments:,} experiments")
    for column in ("what", "time", "size"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
