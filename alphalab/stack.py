"""The processes one `alphalab up` runs: NATS (embedded unless a URL is configured) and services.

Services are crash-only: one that exits with an error is started again (its state is in the event
log and the ledger, so a restart resumes), with a back-off so a service that cannot start does not spin
(counting only crashes in a row: a service that ran for a while before it died starts again at once).
One that is alive but stuck (its heartbeat fresh, its main loop not turning) is killed and restarted.
The embedded NATS server is tended the same way: restarted on its port and store when it dies.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import structlog

from shared.bus import Bus
from shared.events import Producer
from shared.heartbeat import Beat
from shared.nats_server import EmbeddedNats
from shared.secrets import without_secrets
from shared.settings import ENV_PREFIX, Settings

__all__ = ["Stack"]

log = structlog.get_logger(__name__)
_ROOT = Path(__file__).resolve().parents[1]
_STEADY_S = 60.0  # a service that ran this long before it died was not crash-looping
MODEL_CALLERS = frozenset({"strategist", "worker"})  # the only services whose environment holds API keys


@dataclass
class _Child:
    service: str
    name: str
    process: subprocess.Popen[bytes]
    restarts: int = 0  # every start after the first, whatever ended the one before
    crashes: int = 0  # exits with an error in a row, each without a long run before it
    next_start: float = 0.0
    started: float = 0.0


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nats_url = settings.nats_url or ""
        self.logs = settings.home / "logs"
        self._nats: EmbeddedNats | None = None
        self._children: dict[str, _Child] = {}

    def __enter__(self) -> Stack:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if self.settings.nats_url:
            _probe(self.settings.nats_url)
        else:
            self._nats = EmbeddedNats(self.settings.nats_dir)
            self.nats_url = self._nats.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, service: str, name: str | None = None) -> None:
        """Start `python -m services.<service>` as instance `name` (default: the service's name),
        with this stack's settings, logging to logs/<name>.log. Only the services that call models
        inherit API keys."""
        name = name or service
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        if service not in MODEL_CALLERS:
            env = without_secrets(env)
        env.update(
            {
                f"{ENV_PREFIX}NATS_URL": self.nats_url,
                f"{ENV_PREFIX}HOME": str(self.settings.home),
                f"{ENV_PREFIX}INSTANCE": name,
                f"{ENV_PREFIX}LOG_LEVEL": self.settings.log_level,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")])),
            }
        )
        with (self.logs / f"{name}.log").open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )
        previous = self._children.get(name)
        self._children[name] = _Child(
            service,
            name,
            process,
            restarts=previous.restarts + 1 if previous else 0,
            crashes=previous.crashes if previous else 0,
            started=time.monotonic(),
        )
        log.debug("service_spawned", service=service, name=name, pid=process.pid)

    def kill(self, name: str, *, restart: bool = True) -> None:
        """SIGKILL one service, as a crash would; `tend()` then restarts it, unless `restart` is False
        (a machine that is gone for good)."""
        child = self._children[name]
        child.process.kill()
        child.process.wait()
        if not restart:
            del self._children[name]
        log.warning("service_sigkilled", service=name, pid=child.process.pid, restart=restart)

    def tend(self) -> None:
        """Restart embedded NATS if it died, and any service that exited with an error (back-off
        doubling up to 30 s over crashes in a row)."""
        if self._nats is not None and not self._nats.running():
            self._nats.restart()
        now = time.monotonic()
        for child in list(self._children.values()):
            code = child.process.poll()
            if code is None or code == 0:
                continue
            if child.next_start == 0.0:
                child.crashes = 1 if now - child.started > _STEADY_S else child.crashes + 1
                child.next_start = now + min(30.0, 0.25 * 2 ** min(child.crashes, 7))
                log.warning(
                    "service_exited", service=child.name, code=code, restart_in=child.next_start - now
                )
            elif now >= child.next_start:
                self.start(child.service, child.name)

    def restart_stuck(self, beats: list[Beat], now: float) -> list[str]:
        """Kill (so that `tend()` restarts) every service whose heartbeat is fresh but whose main loop
        has stopped turning; a beat counts only if it comes from the child's current process."""
        stuck = []
        for beat in beats:
            child = self._children.get(beat.instance)
            if child is None or child.process.poll() is not None:
                continue
            if beat.incarnation.startswith(f"{child.process.pid}-") and beat.stuck(now):
                log.warning("service_stuck", service=child.name, idle_s=round(now - beat.turned_at, 1))
                self.kill(child.name)
                stuck.append(child.name)
        return stuck

    @property
    def nats(self) -> EmbeddedNats | None:
        """The embedded NATS server, if this stack runs one."""
        return self._nats

    def restarts(self) -> dict[str, int]:
        """How often each service was started again."""
        return {name: child.restarts for name, child in self._children.items()}

    def stop_services(self, names: list[str] | None = None, timeout: float = 15.0) -> None:
        """SIGTERM the named services (default: all), wait for them to drain, SIGKILL stragglers."""
        children = [c for c in self._children.values() if names is None or c.name in names]
        for child in children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("service_killed", service=child.name)
                child.process.kill()
                child.process.wait()
            del self._children[child.name]

    def names(self) -> list[str]:
        return list(self._children)

    def pid(self, name: str) -> int | None:
        """The process id of a running service, None if it is not running now."""
        child = self._children.get(name)
        return child.process.pid if child is not None and child.process.poll() is None else None

    def stop(self) -> None:
        """Stop every service, then embedded NATS."""
        self.stop_services()
        if self._nats is not None:
            self._nats.stop()
            self._nats = None


def _probe(url: str) -> None:
    """Fail now, with one clear line, if the configured server cannot be joined."""

    async def connect() -> None:
        bus = await Bus.connect(url, Producer(service="cli", instance="probe"))
        await bus.close()

    asyncio.run(connect())
