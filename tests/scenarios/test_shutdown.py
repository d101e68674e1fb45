"""SIGTERM ends every service within a stated bound, even while the NATS server is gone."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from shared.bus import Bus
from shared.heartbeat import alive
from shared.nats_server import EmbeddedNats
from shared.service import SHUTDOWN_S
from tests.conftest import start_service, wait_for


@pytest.mark.parametrize("service", ["strategist", "worker", "explorer", "ledger"])
async def test_sigterm_ends_a_service_in_bounded_time_with_nats_down(
    bus: Bus, nats_server: EmbeddedNats, home: Path, service: str
) -> None:
    log = home / f"{service}.log"
    process = start_service(service, nats_server.url, home, log)
    try:
        if service != "ledger":  # the ledger keeps no heartbeat
            await wait_for(lambda: alive(bus, service), 30, f"the {service} to beat")
        else:
            await wait_for(lambda: bus.consumer_caught_up("ledger"), 30, "the ledger to subscribe")
        nats_server.kill()
        time.sleep(1.0)
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_S + 10)
        took = time.monotonic() - asked
    finally:
        if process.poll() is None:
            process.kill()
        nats_server.restart()
    assert took < SHUTDOWN_S + 6, f"{service} took {took:.1f} s to stop: {log.read_text()[-2000:]}"
