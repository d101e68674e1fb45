"""The dashboard's ASGI app: the page, its JSON API, and server-sent events that catch up exactly.

    GET /                                        the page (static/index.html)
    GET /api/campaigns                           every campaign, newest first
    GET /api/campaigns/stream                    server-sent events: that list, again on every change
    GET /api/campaigns/{id}[?at=N | ?time=ISO]   the campaign page, now or as of position N / a time
    GET /api/campaigns/{id}/cards/{proposal}     one card in full (same ?at=)
    GET /api/campaigns/{id}/events?before=N      older lines of the event log (newest first)
    GET /api/campaigns/{id}/stream               server-sent events: the page and new log lines
    GET /api/campaigns/{id}/playbook             every revision, with what it added and dropped
    GET /api/campaigns/{id}/turns                the agent turns, newest first
    GET /api/campaigns/{id}/transcripts/{digest} one turn's conversation (messages, tool calls, results)
    GET /api/campaigns/{id}/runs/{run}/code      the files a run graded, and their diff to its parent,
                                                 also as highlighted HTML (Pygments, all text escaped)
    GET /api/campaigns/{id}/report               the data report (markdown) and its plots' names
    GET /api/campaigns/{id}/plots/{name}         one plot of the data report (PNG)
    POST /api/campaigns/{id}/actions             {"action": "pause" | "resume" | "stop" | "cancel" |
                                                  "hint" | "propose", "reason", "proposal_id", "text",
                                                  "config"}: published as an event recorded as the
                                                  dashboard's --user

Every route of one campaign but the stream and the log's older lines takes `?at=` or `?time=` (read in
one place, `_moment`), and answers as of that position: a page travelled back in time lists, and
opens, no turn, revision, run or report from later.

Every stream message's id is the log position it brings the page up to. A browser that reconnects sends
it back as Last-Event-ID, and gets every line of the log after it, each once; a first connection gets
the last lines only (older ones on request), so a long campaign does not send its whole log at once.
Bound anywhere but loopback the app wants a token: `?token=` once (it then sets a cookie), or
`Authorization: Bearer`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from dashboard import pages
from dashboard.files import Files, NotFound
from dashboard.timeline import Moment, Timeline
from shared.actions import act, action
from shared.bundles import BundleError
from shared.bus import Bus
from shared.errors import ConfigError, PermissionDenied

__all__ = ["COOKIE", "create_app"]

STATIC = Path(__file__).parent / "static"
COOKIE = "alphalab_dashboard"
TAIL = 200  # log lines a first connection gets
CHUNK = 1000  # log lines per message while catching up
_KEEPALIVE_S = 15.0
_COALESCE_S = 0.2  # a burst of events becomes one message


def create_app(
    timeline: Timeline, *, home: Path, bus: Bus | None, user: str, token: str | None = None
) -> ASGIApp:
    """With `bus`, the timeline follows it, files come from its blob store and actions are published
    on it as `user`'s; without, the timeline holds the ledger's events as they were read, files come
    from the campaign folders under `home`, and the app only reads."""
    origin = "live" if bus is not None else "from the ledger"
    files = Files(timeline, home, bus)
    campaign = "/api/campaigns/{campaign_id}"
    app = Starlette(
        routes=[
            Route("/", lambda request: FileResponse(STATIC / "index.html")),
            Route("/api/campaigns", partial(_campaigns, timeline, origin)),
            Route("/api/campaigns/stream", partial(_campaigns_stream, timeline)),
            Route(campaign, partial(_page, timeline)),
            Route(campaign + "/cards/{proposal_id}", partial(_card, timeline)),
            Route(campaign + "/events", partial(_older, timeline)),
            Route(campaign + "/stream", partial(_stream, timeline)),
            Route(campaign + "/actions", partial(_act, timeline, bus, user), methods=["POST"]),
            Route(campaign + "/playbook", partial(_playbook, timeline)),
            Route(campaign + "/turns", partial(_turns, files)),
            Route(campaign + "/transcripts/{digest}", partial(_transcript, files)),
            Route(campaign + "/runs/{run_id}/code", partial(_code, files)),
            Route(campaign + "/report", partial(_report, files)),
            Route(campaign + "/plots/{name}", partial(_plot, files)),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            _BadQuery: lambda request, err: JSONResponse({"error": str(err)}, 400),
            NotFound: lambda request, err: JSONResponse({"error": str(err)}, 404),
            BundleError: lambda request, err: JSONResponse({"error": f"a damaged bundle: {err}"}, 422),
        },
    )
    return app if token is None else TokenGate(app, token)


async def _campaigns(timeline: Timeline, origin: str, request: Request) -> Response:
    listed = pages.campaigns(timeline.at(timeline.position))
    return _json({"position": timeline.position, "source": origin, "campaigns": listed})


async def _campaigns_stream(timeline: Timeline, request: Request) -> Response:
    async def messages() -> AsyncIterator[str]:
        sent = -1
        while True:
            if timeline.position != sent:
                sent = timeline.position
                yield _message(sent, {"campaigns": pages.campaigns(timeline.at(sent))})
                await asyncio.sleep(_COALESCE_S * 5)  # a list of campaigns changes slowly
            if not await timeline.changed_after(sent, _KEEPALIVE_S):
                yield ": keepalive\n\n"

    return StreamingResponse(
        messages(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def _page(timeline: Timeline, request: Request) -> Response:
    page = _campaign_page(timeline, _moment(timeline, request), _campaign_of(request))
    return _json(page) if page is not None else _missing(request)


def _campaign_page(
    timeline: Timeline, moment: Moment, campaign_id: str, plotted: int = 0
) -> dict[str, Any] | None:
    """The campaign page, with where it stands in the log for the time picker: the time of the event at
    its position, and the position of the campaign's first event (where the picker starts)."""
    page = pages.campaign_page(moment, campaign_id, plotted)
    if page is None:
        return None
    time = timeline.events[moment.position - 1].occurred_at.isoformat()
    return page | {"time": time, "first": timeline.of_campaign(campaign_id, limit=1)[0]}


async def _card(timeline: Timeline, request: Request) -> Response:
    moment = _moment(timeline, request)
    view = moment.lab.campaigns.get(request.path_params["campaign_id"])
    cards = moment.details.campaigns.get(request.path_params["campaign_id"], {})
    detail = cards.get(request.path_params["proposal_id"])
    if view is None or detail is None:
        return _missing(request)
    return _json(pages.card(view, detail))


async def _older(timeline: Timeline, request: Request) -> Response:
    before = _number(request.query_params.get("before"), timeline.position + 1)
    positions = [p for p in timeline.of_campaign(request.path_params["campaign_id"]) if p < before]
    return _json({"events": _headlines(timeline, positions[-TAIL:])[::-1]})


async def _stream(timeline: Timeline, request: Request) -> Response:
    campaign_id = request.path_params["campaign_id"]
    resumed = request.headers.get("last-event-id") or request.query_params.get("after")
    return StreamingResponse(
        _messages(timeline, campaign_id, _number(resumed, None)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _messages(timeline: Timeline, campaign_id: str, resumed: int | None) -> AsyncIterator[str]:
    """The page and the log lines after `resumed` (or the last TAIL lines), then again on every change.

    Nothing awaits between reading the log's length and its lines, so a message covers exactly the
    positions up to its id; lines that arrive while it is sent go in the next one.
    """
    sent, first, plotted = resumed or 0, True, 0
    while True:
        now = timeline.position
        lines = timeline.of_campaign(campaign_id, after=sent)
        if first and resumed is None:
            lines = lines[-TAIL:]
        if first or lines:
            *early, last = [lines[i : i + CHUNK] for i in range(0, len(lines), CHUNK)] or [[]]
            for chunk in early:
                yield _message(chunk[-1], {"events": _headlines(timeline, chunk)})
            page = _campaign_page(timeline, timeline.at(now), campaign_id, plotted)
            if page is not None:
                plotted += len(page["progress"]["values"])
            yield _message(now, {"position": now, "events": _headlines(timeline, last), "page": page})
            first = False
            await asyncio.sleep(_COALESCE_S)
        sent = now
        if not await timeline.changed_after(sent, _KEEPALIVE_S):
            yield ": keepalive\n\n"


async def _act(timeline: Timeline, bus: Bus | None, user: str, request: Request) -> Response:
    """An operator's action, published unless the campaign as the page knows it refuses it."""
    if bus is None:
        return JSONResponse({"error": "this dashboard reads the ledger: actions need the live lab"}, 409)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"error": "send the action as application/json"}, 415)
    try:
        body = await request.json()
        asked = action(
            str(body.get("action")),
            by=user,
            reason=str(body.get("reason") or ""),
            proposal_id=body.get("proposal_id"),
            text=str(body.get("text") or ""),
            config=body.get("config"),
        )
    except (ValueError, AttributeError, ConfigError) as err:
        return JSONResponse({"error": str(err)}, 400)
    campaign_id = request.path_params["campaign_id"]
    try:
        event = await act(bus, timeline.lab.campaigns.get(campaign_id), asked, campaign_id)
    except ConfigError as err:
        return JSONResponse({"error": str(err)}, 409)
    except PermissionDenied as err:
        return JSONResponse({"error": str(err)}, 403)
    return _json({"type": event.type, "event_id": event.event_id, "by": user})


async def _playbook(timeline: Timeline, request: Request) -> Response:
    view = _moment(timeline, request).lab.campaigns.get(_campaign_of(request))
    return _json({"revisions": pages.playbook_history(view)}) if view else _missing(request)


async def _turns(files: Files, request: Request) -> Response:
    return _json({"turns": files.turns(_moment(files.timeline, request), _campaign_of(request))})


async def _transcript(files: Files, request: Request) -> Response:
    moment = _moment(files.timeline, request)
    text = await files.transcript(moment, _campaign_of(request), request.path_params["digest"])
    return _json({"text": text})


async def _code(files: Files, request: Request) -> Response:
    """The run's code, highlighted in a thread: lexing a large candidate must not stall the streams."""
    moment = _moment(files.timeline, request)
    code, diff = await files.code(moment, _campaign_of(request), request.path_params["run_id"])
    return _json(await asyncio.to_thread(pages.code_view, code, diff))


async def _report(files: Files, request: Request) -> Response:
    return _json(await files.report(_moment(files.timeline, request), _campaign_of(request)))


async def _plot(files: Files, request: Request) -> Response:
    image = await files.plot(
        _moment(files.timeline, request), _campaign_of(request), request.path_params["name"]
    )
    return Response(image, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _campaign_of(request: Request) -> str:
    return str(request.path_params["campaign_id"])


def _headlines(timeline: Timeline, positions: list[int]) -> list[dict[str, Any]]:
    return [pages.headline(timeline.events[p - 1], p) for p in positions]


def _message(position: int, body: dict[str, Any]) -> str:
    return f"id: {position}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"


def _moment(timeline: Timeline, request: Request) -> Moment:
    """The lab as of `?time=` (ISO 8601; without an offset, UTC like the log's times), else `?at=` (a
    position), else now. Every route that travels in time reads it here, so they all agree."""
    if (when := request.query_params.get("time")) is not None:
        try:
            asked = datetime.fromisoformat(when)
        except ValueError:
            raise _BadQuery(f"time: {when!r} is not an ISO 8601 time") from None
        return timeline.at(timeline.position_at(asked if asked.tzinfo else asked.replace(tzinfo=UTC)))
    return timeline.at(_number(request.query_params.get("at"), timeline.position))


def _number(text: str | None, default: Any) -> Any:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise _BadQuery(f"{text!r} is not a position (an integer)") from None


class _BadQuery(Exception):
    pass


def _json(body: Any) -> Response:
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _missing(request: Request) -> Response:
    return JSONResponse({"error": f"nothing at {request.url.path} (as of that position)"}, status_code=404)


class TokenGate:
    """Refuses every request without the token, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        offered = request.query_params.get("token")
        if offered is not None and secrets.compare_digest(offered, self.token):
            response: Response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return await response(scope, receive, send)
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        for given in (request.cookies.get(COOKIE), bearer):
            if given and secrets.compare_digest(given, self.token):
                return await self.app(scope, receive, send)
        await PlainTextResponse("a token is needed: open the URL `alphalab dashboard` printed", 401)(
            scope, receive, send
        )
