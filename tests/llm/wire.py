"""A local stand-in for the Anthropic and OpenAI APIs, speaking their wire formats to the real SDKs.

    with WireServer(script, api_key="test-key") as server:
        environ = {"ANTHROPIC_BASE_URL": server.url, "OPENAI_BASE_URL": server.url + "/v1", ...}

Routes: POST /v1/messages (Anthropic), POST /v1/chat/completions (OpenAI), GET /v1/models and
/v1/models/{id} (both; Anthropic's shape when the `anthropic-version` header is sent). The `script`
(see tests.llm.script) decides each completion from a neutral view of the request; the server
refuses, with the provider's 400, requests a real API would refuse (unanswered tool calls, altered
thinking, empty text, too many cache breakpoints), and records every request for assertions.

A script that raises answers 400 (not retried) and the error is raised again on leaving the
`with` block, so a broken script fails its test instead of hanging in retries.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, TracebackType
from typing import Any

from tests.llm import _anthropic_dialect, _openai_dialect
from tests.llm.script import Answer, Call, CallView, Fault, Request, ResultView, Script, Turn, in_order

__all__ = [
    "Answer",
    "Call",
    "CallView",
    "Fault",
    "Recorded",
    "Request",
    "ResultView",
    "Script",
    "Turn",
    "WireServer",
    "in_order",
]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as it arrived: header names lower-cased, the body's raw bytes."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


class WireServer:
    """`api_key` None accepts any key; `models` None knows every model name; `models_route` False
    answers no models request (as some proxies and small servers do)."""

    def __init__(
        self,
        script: Script,
        *,
        api_key: str | None,
        models: Collection[str] | None = None,
        models_route: bool = True,
    ) -> None:
        self.script = script
        self.api_key = api_key
        self.models = models
        self.models_route = models_route  # False: like a proxy that serves completions only
        self.requests: list[Recorded] = []
        self.script_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.wire = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.02,), name="wire-server", daemon=True
        )  # a short poll interval: shutting down waits one

    @property
    def url(self) -> str:
        """Anthropic's base URL; OpenAI's is this plus "/v1"."""
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def posted(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies POSTed to `path`, in order."""
        return [r.json for r in self.requests if r.method == "POST" and r.path == path]

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self.script_errors and kind is None:
            raise self.script_errors[0]

    def respond(self, recorded: Recorded) -> _Response:
        with self._lock:
            self.requests.append(recorded)
        dialect = _dialect(recorded)
        if self.api_key is not None and _key(recorded.headers) != self.api_key:
            return _error(dialect, 401, "", _refusal(dialect, _key(recorded.headers)))
        route = recorded.path.split("?")[0].rstrip("/")
        if route.startswith("/v1/models") and not self.models_route:
            return _error(dialect, 404, "not_found_error", f"no route {recorded.method} {recorded.path}")
        if recorded.method == "GET" and route == "/v1/models":
            return _Response(200, dialect.models_body(sorted(self.models or ())), {})
        if recorded.method == "GET" and route.startswith("/v1/models/"):
            return self._model(dialect, route.removeprefix("/v1/models/"))
        if recorded.method == "POST" and route in ("/v1/messages", "/v1/chat/completions"):
            return self._complete(dialect, recorded)
        return _error(dialect, 404, "not_found_error", f"no route {recorded.method} {recorded.path}")

    def _model(self, dialect: ModuleType, model: str) -> _Response:
        if self.models is not None and model not in self.models:
            return _error(dialect, 404, "", _unknown_model(dialect, model))
        return _Response(200, dialect.model_body(model), {})

    def _complete(self, dialect: ModuleType, recorded: Recorded) -> _Response:
        body = recorded.json
        if self.models is not None and body.get("model") not in self.models:
            return _error(dialect, 404, "", _unknown_model(dialect, body.get("model")))
        try:
            request = dialect.view(body, recorded.headers)
        except dialect.BadRequest as exc:
            return _error(dialect, 400, "invalid_request_error", str(exc))
        try:
            reply = self.script(request)
        except Exception as exc:
            self.script_errors.append(exc)
            return _error(dialect, 400, "invalid_request_error", f"the test's script failed: {exc!r}")
        if isinstance(reply, Fault):
            return _error(dialect, reply.status, reply.kind, reply.message, retry_after=reply.retry_after)
        return _Response(200, dialect.render(reply, request), _request_id(dialect))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        headers = {name.lower(): value for name, value in self.headers.items()}
        recorded = Recorded(self.command, self.path, headers, self.rfile.read(length))
        response = self.server.wire.respond(recorded)  # type: ignore[attr-defined]
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests are the log."""


def _dialect(recorded: Recorded) -> ModuleType:
    anthropic = recorded.path.startswith("/v1/messages") or "anthropic-version" in recorded.headers
    return _anthropic_dialect if anthropic else _openai_dialect


def _key(headers: Mapping[str, str]) -> str:
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer[7:] if bearer.lower().startswith("bearer ") else "")


def _refusal(dialect: ModuleType, key: str) -> str:
    if dialect is _anthropic_dialect:
        return "invalid x-api-key"
    return f"Incorrect API key provided: {key[:3]}{'*' * 8}{key[-4:]}."  # OpenAI's masked echo


def _unknown_model(dialect: ModuleType, model: str) -> str:
    if dialect is _anthropic_dialect:
        return f"model: {model}"
    return f"The model `{model}` does not exist or you do not have access to it."


def _request_id(dialect: ModuleType) -> dict[str, str]:
    name = "request-id" if dialect is _anthropic_dialect else "x-request-id"
    return {name: f"req_{uuid.uuid4().hex[:24]}"}


def _error(
    dialect: ModuleType, status: int, kind: str, message: str, *, retry_after: float | None = None
) -> _Response:
    headers = _request_id(dialect)
    if retry_after is not None:  # whole seconds as `retry-after`, fractions as `retry-after-ms`
        if float(retry_after).is_integer():
            headers["retry-after"] = str(int(retry_after))
        else:
            headers["retry-after-ms"] = str(int(retry_after * 1000))
    return _Response(status, dialect.error_body(status, kind, message), headers)
