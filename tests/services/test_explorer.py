"""The explorer as a real process: one data report per campaign, through duplicates, kills and failures."""

from __future__ import annotations

import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.explorer.harness import HarnessFailed, fetch
from shared.bus import STREAM, Bus
from shared.domain import load_domain
from shared.events import (
    SUBJECT_PREFIX,
    BaselineEvaluated,
    CampaignStarted,
    Event,
    ExplorationFinished,
    HarnessRejected,
    HarnessTested,
    PhaseFinished,
    encode,
)
from shared.inputs import Resolved
from shared.nats_server import EmbeddedNats
from tests.conftest import start_service, stream_events, wait_for
from tests.factories import event

PNG = b"\x89PNG\r\n\x1a\n"
STANDIN_HARNESS = '''
"""A stand-in domain harness: two days of three hourly sensors, or the user's CSV given as --data."""
import argparse, json, pathlib, sys, time

with open(pathlib.Path(__file__).with_name("calls.log"), "a") as calls:  # how often each command ran
    calls.write(sys.argv[1] + "\\n")
if {fail!r}:
    sys.exit("stand-in harness: this domain is broken on purpose")

import numpy as np
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["export", "baselines"])
parser.add_argument("--out")
parser.add_argument("--data")
args = parser.parse_args()
if args.data:
    matrix = pd.read_csv(args.data, parse_dates=["timestamp"])
else:
    hours = np.arange(48)
    matrix = pd.DataFrame({{
        "timestamp": pd.date_range("2024-03-04", periods=48, freq="h"),
        "north": 10 + 5 * np.sin(2 * np.pi * hours / 24),
        "south": 20 + 10 * np.sin(2 * np.pi * hours / 24),
        "east": np.where(hours % 7 == 0, np.nan, 3.0 + hours % 5),
    }})
if args.command == "export":
    time.sleep({sleep})
    matrix.to_parquet(args.out)
else:
    print("scoring baselines...")
    print(json.dumps({{"baselines": [
        {{"name": "last-value", "value": 2.5, "metrics": {{"rmse": 2.5, "mae": 2.0}}}},
        {{"name": "seasonal-naive", "value": 1.25, "metrics": {{"rmse": 1.25, "mae": 1.0}}}},
    ]}}))
'''


STANDIN_MANIFEST = """
name = "standin"
objective = "forecast three sensors"
[metric]
name = "rmse"
direction = "minimize"
"""


def _standin(folder: Path, *, sleep: float = 0.0, fail: bool = False) -> Path:
    """A user's own adapter folder whose harness serves a small synthetic matrix."""
    (folder / "prompts").mkdir(parents=True)
    (folder / "domain.toml").write_text(STANDIN_MANIFEST)
    (folder / "knowledge.md").write_text("Three synthetic sensors with a daily cycle.\n")
    for role in ("explorer", "strategist", "worker", "supervisor"):
        (folder / "prompts" / f"{role}.md").write_text(f"You are the {role}.\n")
    (folder / "candidate.py").write_text("")
    (folder / "harness.py").write_text(textwrap.dedent(STANDIN_HARNESS.format(sleep=sleep, fail=fail)))
    return folder


def _campaign(domain: str | Path, campaign_id: str = "c1", data: Path | None = None) -> Event:
    payload = CampaignStarted(
        domain=str(domain),
        data=str(data) if data else None,
        objective="forecast the sensors",
        metric="rmse",
        direction="minimize",
    )
    return event(payload, campaign_id)


@pytest.fixture
def explorer(nats_server: EmbeddedNats, home: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_service("explorer", nats_server.url, home, home / "explorer.log")
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (home / "explorer.log").read_text()[-3000:]


def _calls(adapter: Path) -> list[str]:
    """The commands the explorer ran on a stand-in adapter's harness, in the order they started."""
    return (adapter / "calls.log").read_text().split()


async def _counts(bus: Bus, campaign_id: str) -> dict[str, int]:
    """How many messages the stream holds of each event type in a campaign."""
    prefix = f"{SUBJECT_PREFIX}.{campaign_id}."
    info = await bus.js.stream_info(STREAM, subjects_filter=prefix + ">")
    return {subject.removeprefix(prefix): n for subject, n in (info.state.subjects or {}).items()}


async def _explored(bus: Bus, campaign_id: str, timeout: float, log: Path) -> Event:
    async def finished() -> bool:
        return bool(await stream_events(bus, campaign_id, "phase-finished"))

    try:
        await wait_for(finished, timeout, f"campaign {campaign_id} to be explored")
    except AssertionError:
        raise AssertionError(log.read_text()[-3000:]) from None
    [done] = await stream_events(bus, campaign_id, "exploration-finished")
    return done


async def _idle(bus: Bus) -> bool:
    info = await bus.js.consumer_info(STREAM, "explorer")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_users_adapter_folder_and_data_file_are_explored_once(
    bus: Bus, explorer: subprocess.Popen[bytes], tmp_path: Path, home: Path
) -> None:
    """The report describes the user's CSV, plots are PNGs, and a duplicate start adds no event."""
    adapter = _standin(tmp_path / "my-adapter")
    csv = tmp_path / "mine.csv"
    csv.write_text("timestamp,a,b\n" + "".join(f"2024-01-01 {h:02d}:00,{h},{2 * h}\n" for h in range(24)))
    start = _campaign(adapter, data=csv)
    await bus.publish(start)

    done = await _explored(bus, "c1", 60, home / "explorer.log")
    assert isinstance(done.payload, ExplorationFinished) and done.causation_id == start.event_id
    report = (await bus.blobs.get(done.payload.report_digest or "")).decode()
    assert report.startswith("# Data report: ") and "24 steps x 2 sensors at 1.0 h steps" in report
    assert "sensors are highly correlated: median pairwise r = 1.00" in done.payload.findings
    assert done.payload.findings[-1] == (
        "baseline to beat: seasonal-naive with rmse = 1.25 (next best: last-value = 2.5)"
    )
    assert len(done.payload.plots) >= 3
    for name, digest in done.payload.plots.items():
        assert name.endswith(".png") and (await bus.blobs.get(digest)).startswith(PNG)
    baselines = [e.payload for e in await stream_events(bus, "c1", "baseline-evaluated")]
    assert baselines == [
        BaselineEvaluated(name="last-value", value=2.5, metrics={"rmse": 2.5, "mae": 2.0}),
        BaselineEvaluated(name="seasonal-naive", value=1.25, metrics={"rmse": 1.25, "mae": 1.0}),
    ]

    # The same start again, without a message id, so that JetStream cannot drop it: the explorer must.
    await bus.js.publish(start.subject, encode(start))
    await wait_for(lambda: _idle(bus), 30, "the explorer to handle the duplicate start")
    assert sorted(_calls(adapter)) == ["baselines", "export"], "the duplicate must not be explored again"
    counts = {"phase-started": 2, "phase-finished": 2, "harness-reviewed": 1, "harness-tested": 1}
    assert await _counts(bus, "c1") == {
        "campaign-started": 2,
        "baseline-evaluated": 2,
        "exploration-finished": 1,
        "harness-rejected": 1,
        **counts,
    }
    # The stand-in's harness has no grade command, so Phase 2 rejects it, its own candidate first.
    [rejected] = await stream_events(bus, "c1", "harness-rejected")
    assert isinstance(rejected.payload, HarnessRejected)
    assert rejected.payload.reasons[0].startswith(
        "honest-candidate: the adapter's own candidate failed, so no hack was tried: invalid: "
    )
    [tested] = await stream_events(bus, "c1", "harness-tested")
    assert isinstance(tested.payload, HarnessTested)
    assert tested.payload.failed == ("honest-candidate",), "hacks built on a broken candidate say nothing"


async def test_the_traffic_domain_is_explored_on_its_real_counts(
    bus: Bus, explorer: subprocess.Popen[bytes], home: Path
) -> None:
    """On the packaged detector counts the report finds the daily cycle and names the baseline to beat."""
    await bus.publish(_campaign("traffic", "traffic1"))
    done = await _explored(bus, "traffic1", 240, home / "explorer.log")
    assert isinstance(done.payload, ExplorationFinished)
    findings = "\n".join(done.payload.findings)
    assert "22 sensors at 15 min steps" in findings and "strong daily cycle" in findings
    assert "baseline to beat:" in findings
    assert len(await stream_events(bus, "traffic1", "baseline-evaluated")) >= 2
    assert {"daily_profile.png", "correlation.png", "series_heatmap.png"} <= set(done.payload.plots)


async def test_an_explorer_killed_mid_exploration_explores_once_after_restart(
    bus: Bus, nats_server: EmbeddedNats, tmp_path: Path, home: Path
) -> None:
    """SIGKILL the explorer once it has started on a campaign; its successor finishes it, exactly once."""
    adapter = _standin(tmp_path / "slow-adapter", sleep=3.0)
    log = home / "explorer.log"
    process = start_service("explorer", nats_server.url, home, log)
    await bus.publish(_campaign(adapter))

    async def started() -> bool:  # its harness's export running (phase-started alone can precede it)
        calls = adapter / "calls.log"
        return (
            bool(await stream_events(bus, "c1", "phase-started"))
            and calls.exists()
            and "export" in _calls(adapter)
        )

    await wait_for(started, 60, "the explorer to start on the campaign")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert not await stream_events(bus, "c1", "exploration-finished"), "the kill must land mid-exploration"

    process = start_service("explorer", nats_server.url, home, log)
    try:
        await _explored(bus, "c1", 90, log)
        await wait_for(lambda: _idle(bus), 30, "the explorer to ack the campaign")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert _calls(adapter).count("export") == 2, "the successor must have explored again"
    assert await _counts(bus, "c1") == {
        "campaign-started": 1,
        "phase-started": 2,
        "baseline-evaluated": 2,
        "exploration-finished": 1,
        "phase-finished": 2,
        "harness-reviewed": 1,
        "harness-tested": 1,
        "harness-rejected": 1,
    }


async def test_a_broken_harness_ends_the_phase_as_failed_after_the_last_retry(
    bus: Bus, explorer: subprocess.Popen[bytes], tmp_path: Path, home: Path
) -> None:
    """A harness that always fails is retried, then the phase ends as failed: the failure is an event of
    its own (which ends the campaign), so the start is acked, not dead-lettered."""
    adapter = _standin(tmp_path / "broken-adapter", fail=True)
    await bus.publish(_campaign(adapter))
    await _wait_for_failure(bus, home / "explorer.log")
    [finished] = await stream_events(bus, "c1", "phase-finished")
    assert isinstance(finished.payload, PhaseFinished) and finished.payload.phase == "explore"
    assert finished.payload.outcome.startswith("failed: ") and "broken on purpose" in finished.payload.outcome
    await wait_for(lambda: _idle(bus), 30, "the explorer to ack the campaign")
    assert await stream_events(bus, "c1", "event-rejected") == []
    assert await stream_events(bus, "c1", "exploration-finished") == []
    # Each try starts export and baselines together and kills the other when one fails, so a try
    # may log one command or both: three tries log at least three and at most six.
    calls = _calls(adapter)
    assert 3 <= len(calls) <= 6 and max(calls.count("export"), calls.count("baselines")) <= 3


async def _wait_for_failure(bus: Bus, log: Path) -> None:
    async def failed() -> bool:
        return bool(await stream_events(bus, "c1", "phase-finished"))

    try:
        await wait_for(failed, 60, "the exploration to fail for good")
    except AssertionError:
        raise AssertionError(log.read_text()[-3000:]) from None


@pytest.mark.parametrize(
    ("manifest_change", "named"),
    [
        (('name = "rmse"', 'name = "mape"'), "[metric].name is 'mape' but baseline 'last-value''s metrics"),
        (('direction = "minimize"', 'direction = "minimize"\n[[baselines]]\nname = "drift"'),
         "[[baselines]] names ['drift'] but `harness.py baselines` printed ['last-value', 'seasonal-naive']"),
    ],
)  # fmt: skip
async def test_a_harness_that_prints_other_names_than_its_manifest_is_refused_naming_them(
    tmp_path: Path, manifest_change: tuple[str, str], named: str
) -> None:
    """The manifest is checked against what the harness really prints, on the first call."""
    adapter = _standin(tmp_path / "my-adapter")
    manifest = adapter / "domain.toml"
    manifest.write_text(manifest.read_text().replace(*manifest_change))
    with pytest.raises(HarnessFailed) as refused:
        await fetch(Resolved(load_domain(str(adapter)), None), tmp_path)
    assert named in str(refused.value) and str(manifest) in str(refused.value)


async def test_without_a_sandbox_no_candidate_is_run_and_the_harness_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hacks are adversarial code: on a host with no isolation they would run loose (write to /,
    fill /tmp, fork), so Phase 2 runs none of them, and not the honest candidate either."""
    from services.explorer.acceptance import accept

    monkeypatch.setenv("ALPHALAB_SANDBOX", "none")
    domain = load_domain("traffic")
    campaign = CampaignStarted(domain="traffic", objective="o", metric="mae", direction="minimize")
    payloads = await accept(campaign, Resolved(domain, None), tmp_path / "scratch", set())
    reviewed, tested, verdict = payloads
    assert isinstance(verdict, HarnessRejected) and tested.failed == ("sandbox",)
    assert any("no candidate was run" in reason for reason in verdict.reasons)
    assert not (tmp_path / "scratch").exists()  # nothing was even copied to run
