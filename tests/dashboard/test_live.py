"""The dashboard process live on a real NATS stream: pushed pages, exact catch-up, time travel, the token."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from shared.bus import STREAM
from shared.events import Event
from shared.nats_server import EmbeddedNats
from tests.dashboard.conftest import Dashboard, publish, stream_messages
from tests.factories import small_campaign
from tests.infra.test_nats_configs import EMITS, bus_as, single_server, url


def _publish_as_writers(port: int, events: list[Event]) -> None:
    """Publish `events` in order, each as the user that infra/nats/accounts.conf lets emit its type."""

    async def publish_each() -> None:
        writers = {user: await bus_as(user, port) for user in ("strategist", "worker", "explorer")}
        try:
            for e in events:
                await next(bus for user, bus in writers.items() if e.type in EMITS[user]).publish(e)
        finally:
            for bus in writers.values():
                await bus.close()

    asyncio.run(publish_each())


def _stored(port: int) -> int:
    async def count() -> int:
        bus = await bus_as("ledger", port)
        try:
            return (await bus.js.stream_info(STREAM)).state.messages
        finally:
            await bus.close()

    return asyncio.run(count())


def _wait_for_events(dashboard: Dashboard, campaign_id: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = httpx.get(f"{dashboard.url}/api/campaigns").json()["campaigns"]
        if any(c["campaign_id"] == campaign_id and c["events"] >= count for c in listed):
            return
        time.sleep(0.1)
    raise AssertionError(f"the dashboard did not fold {count} events of {campaign_id}")


def _cards(page: dict, column: str) -> list[str]:
    return [card["proposal_id"] for card in page["kanban"][column]["cards"]]


def test_a_page_that_reconnects_gets_every_line_of_the_log_once(
    nats_server: EmbeddedNats, home: Path
) -> None:
    ours, other = small_campaign("c1", runs=3), small_campaign("c2", runs=1)
    publish(nats_server.url, ours[:5])  # started, baseline, p0 created, started, finished: positions 1-5
    with Dashboard(home, nats_url=nats_server.url) as dashboard:
        _wait_for_events(dashboard, "c1", 5)
        stream = f"{dashboard.url}/api/campaigns/c1/stream"
        [(first_id, first)] = list(stream_messages(stream, 1))
        assert first_id == 5 and [line["position"] for line in first["events"]] == [1, 2, 3, 4, 5]
        assert _cards(first["page"], "finished") == ["p0"]

        # While the page is away: the next proposal of ours, interleaved with another campaign's events.
        publish(nats_server.url, [ours[5], *other[:2], ours[6], *other[2:], ours[7]])
        _wait_for_events(dashboard, "c1", 8)
        [(second_id, second)] = list(stream_messages(stream, 1, last_event_id=first_id))
        assert second_id == 5 + 3 + len(other)
        caught_up = [line["position"] for line in second["events"]]
        assert caught_up == [6, 9, 5 + 3 + len(other)], "exactly our lines after 5, each once, none of c2's"
        assert [line["type"] for line in second["events"]] == [
            "proposal-created",
            "run-started",
            "run-finished",
        ]
        assert _cards(second["page"], "finished") == ["p1", "p0"]
        assert len(second["page"]["leaderboard"]["rows"]) == 3 and second["page"]["progress"]["values"] == [
            5.0,
            6.0,
        ]

        # Connected: a new event is pushed without being asked for.
        received: list[tuple[int, dict]] = []

        def read() -> None:
            for message in stream_messages(stream, 2, last_event_id=second_id):
                received.append(message)

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(1.0)
        assert len(received) == 1 and received[0][1]["events"] == []  # the page as it stands, no new line
        publish(nats_server.url, ours[8:9])
        reader.join(20)
        assert len(received) == 2
        pushed_id, pushed = received[1]
        assert [line["position"] for line in pushed["events"]] == [pushed_id] and pushed_id == second_id + 1
        assert _cards(pushed["page"], "proposed") == ["p2"]
        assert received[0][1]["page"]["progress"] == {"from": 0, "values": [5.0, 6.0], "baseline": 10.0}
        assert pushed["page"]["progress"] == {"from": 2, "values": [], "baseline": 10.0}  # only what is new


def test_time_travel_shows_the_lab_as_it_was_at_a_position_or_a_time(
    nats_server: EmbeddedNats, home: Path
) -> None:
    events = small_campaign("c1", runs=2)
    publish(nats_server.url, events)
    with Dashboard(home, nats_url=nats_server.url) as dashboard:
        _wait_for_events(dashboard, "c1", len(events))
        page = f"{dashboard.url}/api/campaigns/c1"
        assert _cards(httpx.get(page, params={"at": 3}).json(), "proposed") == ["p0"]
        at_four = httpx.get(page, params={"at": 4}).json()
        assert _cards(at_four, "running") == ["p0"] and at_four["position"] == 4
        assert at_four["leaderboard"]["total"] == 1  # the baseline only: p0 had no result yet
        then = events[5].occurred_at.isoformat()  # p1 created (second 3, like p0's result)
        assert _cards(httpx.get(page, params={"time": then}).json(), "finished") == ["p0"]
        now = httpx.get(page).json()
        assert now["position"] == len(events) and _cards(now, "finished") == ["p1", "p0"]

        card = httpx.get(f"{page}/cards/p0", params={"at": 4}).json()
        assert card["state"] == "running" and card["attempts"][0]["ended_at"] is None
        card = httpx.get(f"{page}/cards/p0").json()
        assert card["attempts"][0]["value"] == 5.0 and card["config"] == {"lr": 0}
        assert [state for state, _, _ in card["history"]] == ["proposed", "running", "finished"]

        assert httpx.get(page, params={"at": "soon"}).status_code == 400
        assert httpx.get(f"{dashboard.url}/api/campaigns/nope").status_code == 404
        assert httpx.get(page, params={"at": 0}).status_code == 404  # before the campaign's first event


def test_away_from_loopback_every_request_needs_the_token(nats_server: EmbeddedNats, home: Path) -> None:
    with Dashboard(home, nats_url=nats_server.url, host="0.0.0.0") as dashboard:
        printed = dashboard.log.read_text()
        assert "?token=" in printed, printed
        token = printed.split("?token=")[1].split()[0]
        local = f"http://127.0.0.1:{dashboard.port}"
        for path in ("/", "/api/campaigns", "/api/campaigns/c1/stream", "/static/app.js"):
            assert httpx.get(local + path).status_code == 401, path
        assert httpx.get(local + "/api/campaigns", params={"token": "guess"}).status_code == 401
        assert (
            httpx.get(local + "/api/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
        with httpx.Client(base_url=local, follow_redirects=True) as browser:
            opened = browser.get("/", params={"token": token})
            assert opened.status_code == 200 and "AlphaLab" in opened.text  # redirected, with the cookie
            assert "token" not in str(opened.url) and browser.get("/api/campaigns").status_code == 200


def test_the_read_only_user_watches_the_lab_live_but_cannot_act(tmp_path: Path, home: Path) -> None:
    """`alphalab dashboard` connected as `cli` (infra/nats/accounts.conf): it may not create consumers,
    yet it shows what the services publish, live; an action is refused by NATS, so nothing is stored."""
    events = small_campaign("c1", runs=2)
    with single_server(tmp_path) as server:
        _publish_as_writers(server.port, events[:5])
        with Dashboard(home, "--user", "cli", nats_url=url("cli", server.port)) as dashboard:
            _wait_for_events(dashboard, "c1", 5)
            _publish_as_writers(server.port, events[5:])
            _wait_for_events(dashboard, "c1", len(events))
            assert _cards(httpx.get(f"{dashboard.url}/api/campaigns/c1").json(), "finished") == ["p1", "p0"]

            # NATS refuses the publish (a permission violation): the page hears so at once, not after the
            # ack's timeout
            started = time.monotonic()
            acted = httpx.post(
                f"{dashboard.url}/api/campaigns/c1/actions", json={"action": "pause"}, timeout=30
            )
            assert acted.status_code == 403 and time.monotonic() - started < 3, acted.text
            refused = "the NATS user cli may not publish alphalab.events.c1.campaign-paused"
            assert acted.json()["error"] == refused
        assert _stored(server.port) == len(events)
        assert server.violations() == ["alphalab.events.c1.campaign-paused"]
