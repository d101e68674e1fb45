"""Services on hosts that share nothing with the operator's machine: no adapter folder, no data file.

Each service gets its own ALPHALAB_HOME and working directory in a folder of its own (its "host");
the operator's adapter folder and data file are deleted as soon as the campaign has started, so a
service that read a path from `campaign-started` instead of the blobs it names would fail. The second
test puts every service in a network namespace of its own, joined to the NATS host by a veth pair.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphalab.scaffold import new_domain
from shared.bus import Bus
from shared.events import Producer
from shared.live import LiveProjection
from shared.nats_server import EmbeddedNats
from tests.conftest import service_env, wait_for

ALPHALAB = str(Path(sys.executable).parent / "alphalab")
SERVICES = ("ledger", "explorer", "strategist", "supervisor", "worker")
EXPERIMENTS = 3


def _operator_files(folder: Path) -> tuple[Path, Path]:
    """A tabular adapter from `new-domain` and the user's own CSV for it, as an operator has them."""
    adapter = new_domain("clinic", "tabular", folder)
    rng = np.random.default_rng(7)
    features = rng.normal(size=(240, 3))
    labels = np.where(features[:, 0] + 0.5 * features[:, 1] > 0, "sick", "well")
    data = folder / "patients.csv"
    pd.DataFrame(
        {"age": features[:, 0], "dose": features[:, 1], "pulse": features[:, 2], "label": labels}
    ).to_csv(data, index=False)
    return adapter, data


def _start(name: str, host: Path, nats_url: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """`python -m services.<name>` with `host`'s home and working directory, under `prefix` (netns)."""
    home = host / "home"
    home.mkdir(parents=True)
    env = service_env(nats_url, home)
    with (host / f"{name}.log").open("ab") as sink:
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", f"services.{name}"], env=env, stdout=sink, stderr=sink, cwd=host
        )


async def _run_campaign(tmp_path: Path, nats_url: str, starts: dict[str, subprocess.Popen[bytes]]) -> None:
    """`alphalab start` from the operator's machine; its adapter and data deleted once it has started."""
    adapter, data = _operator_files(tmp_path / "operator")
    command = [
        ALPHALAB,
        "start",
        "--domain",
        str(adapter),
        "--data",
        str(data),
        "--experiments",
        str(EXPERIMENTS),
    ]
    home = tmp_path / "operator" / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    cli = subprocess.Popen(
        [*command, "--home", str(home), "--nats-url", nats_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path / "operator",
    )
    bus = await Bus.connect(nats_url, Producer(service="cli", instance="pytest"))
    projection = LiveProjection(bus)
    await projection.start()
    try:
        await wait_for(lambda: projection.lab.campaigns, 60, "the campaign to start")
        shutil.rmtree(adapter)
        data.unlink()

        def finished() -> bool:
            for name, process in starts.items():
                assert process.poll() is None, (
                    f"{name} exited: {(tmp_path / name / f'{name}.log').read_text()[-3000:]}"
                )
            return cli.poll() is not None

        await wait_for(finished, 400, "the campaign to finish")
        await projection.settle()
        [view] = projection.lab.campaigns.values()
    finally:
        await projection.stop()
        await bus.close()
    printed = cli.stdout.read() if cli.stdout else ""
    assert cli.returncode == 0 and view.status == "finished", printed[-3000:]
    assert (
        view.campaign_id in printed and (home / "campaigns" / view.campaign_id / "projections.json").is_file()
    )
    assert view.harness == "accepted", view.harness_reasons
    graded = [row for row in view.leaderboard.ranked() if not row.baseline]
    assert len(graded) >= 1 and view.budget.experiments >= EXPERIMENTS, view.run_errors
    assert not view.run_errors, view.run_errors
    assert view.adapter_digest and view.data_digest
    for name in ("explorer", "worker"):  # each resolved both from the blob store into its own home
        cache = tmp_path / name / "home" / "cache"
        assert (cache / "adapters" / view.adapter_digest.removeprefix("sha256:") / "harness.py").is_file()
        assert (cache / "data" / view.data_digest.removeprefix("sha256:") / "patients.csv").is_file()


def _stop(starts: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in starts.values():
        process.terminate()
    for process in starts.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.timeout(600)
async def test_a_campaign_finishes_with_every_service_on_a_host_of_its_own(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "nats") as server:
        starts = {name: _start(name, tmp_path / name, server.url) for name in SERVICES}
        try:
            await _run_campaign(tmp_path, server.url, starts)
        finally:
            _stop(starts)


class _Namespaces:
    """One network namespace per service, each joined to this one by a veth pair on its own /30."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.tag = secrets.token_hex(3)
        self.subnet = 200 + secrets.randbelow(50)
        self.names = names

    def namespace(self, index: int) -> str:
        return f"alphalab-{self.tag}-{index}"

    def nats_address(self, index: int) -> str:
        """The NATS host's end of namespace `index`'s veth pair."""
        return f"10.{self.subnet}.{index}.1"

    def create(self) -> None:
        for index in range(len(self.names)):
            ns, outside, inside = self.namespace(index), f"al{self.tag}o{index}", f"al{self.tag}i{index}"
            for command in (
                f"ip netns add {ns}",
                f"ip link add {outside} type veth peer name {inside}",
                f"ip link set {inside} netns {ns}",
                f"ip addr add {self.nats_address(index)}/30 dev {outside}",
                f"ip link set {outside} up",
                f"ip netns exec {ns} ip addr add 10.{self.subnet}.{index}.2/30 dev {inside}",
                f"ip netns exec {ns} ip link set {inside} up",
                f"ip netns exec {ns} ip link set lo up",
            ):
                subprocess.run(command.split(), check=True, capture_output=True)

    def delete(self) -> None:
        for index in range(len(self.names)):
            subprocess.run(["ip", "netns", "del", self.namespace(index)], capture_output=True)
            subprocess.run(["ip", "link", "del", f"al{self.tag}o{index}"], capture_output=True)


@pytest.fixture
def namespaces() -> Iterator[_Namespaces]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    spaces = _Namespaces(SERVICES)
    try:
        spaces.create()
    except subprocess.CalledProcessError as err:
        spaces.delete()
        pytest.skip(f"cannot make network namespaces here: {err.stderr.decode().strip()}")
    yield spaces
    spaces.delete()


@pytest.mark.timeout(600)
async def test_a_campaign_finishes_with_every_service_in_its_own_network_namespace(
    tmp_path: Path, namespaces: _Namespaces
) -> None:
    with EmbeddedNats(tmp_path / "nats", host="0.0.0.0") as server:
        local = f"nats://127.0.0.1:{server.port}"
        probe = f"import socket; socket.create_connection(('127.0.0.1', {server.port}), timeout=2)"
        isolated = subprocess.run(
            ["nsenter", f"--net=/run/netns/{namespaces.namespace(0)}", sys.executable, "-c", probe],
            capture_output=True,
        )
        assert isolated.returncode != 0, "a namespace must not reach the NATS host's loopback"
        starts = {
            name: _start(
                name,
                tmp_path / name,
                f"nats://{namespaces.nats_address(index)}:{server.port}",
                # nsenter, not `ip netns exec`: that also remounts /sys, losing the cgroup tree that
                # the sandbox limits memory with (Phase 2 then rightly refuses the harness)
                ("nsenter", f"--net=/run/netns/{namespaces.namespace(index)}"),
            )
            for index, name in enumerate(SERVICES)
        }
        try:
            await _run_campaign(tmp_path, local, starts)
        finally:
            _stop(starts)
