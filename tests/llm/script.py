"""What a WireServer script sees and says, the same for both providers.

A script is a function of one request: the whole conversation so far, provider-neutral. It must not
keep its own state between calls when several processes share a server (a campaign's workers do):
decide from `Request.turns` alone. `in_order` is the exception, for a test with one client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Answer", "Call", "CallView", "Fault", "Request", "ResultView", "Script", "Turn", "in_order"]

Flavor = Literal["anthropic", "openai"]


@dataclass(frozen=True, slots=True)
class CallView:
    """A tool call the model made earlier in the conversation; `arguments` is None if not an object."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str


@dataclass(frozen=True, slots=True)
class ResultView:
    """A tool result the client sent back. `name` is the called tool's, looked up by the call id.
    OpenAI has no error flag: there `is_error` means the content starts with "Error: "."""

    call_id: str
    name: str
    text: str
    images: int = 0
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation. For OpenAI, a run of tool messages and the user message
    after them are one user turn, as they were one `Message` in the client."""

    role: Literal["user", "assistant"]
    text: str = ""
    calls: tuple[CallView, ...] = ()
    results: tuple[ResultView, ...] = ()
    images: int = 0  # images in the turn outside tool results
    thinking: tuple[str, ...] = ()  # thinking sent back (Anthropic), signature verified


@dataclass(frozen=True, slots=True)
class Request:
    flavor: Flavor
    model: str
    system: str
    turns: tuple[Turn, ...]
    tools: tuple[str, ...]
    max_tokens: int
    thinking_budget: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def last(self) -> Turn:
        return self.turns[-1]

    @property
    def results(self) -> dict[str, ResultView]:
        """Every tool result so far, by tool name (the latest one of each)."""
        return {result.name: result for turn in self.turns for result in turn.results}


@dataclass(frozen=True, slots=True)
class Call:
    """A tool call to make. A string `arguments` goes on the wire as is: script malformed JSON with it."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """The model's reply. Usage is in the port's terms: `input_tokens` counts every prompt token,
    cached and cache-written ones included. `thinking` is returned only when the request enabled it."""

    text: str = ""
    calls: tuple[Call, ...] = ()
    thinking: str = ""
    input_tokens: int = 100
    output_tokens: int = 20
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str = ""  # default: the provider's word for "tool calls" or "done"


@dataclass(frozen=True, slots=True)
class Fault:
    """An HTTP error in the provider's own error shape. `kind` defaults to the provider's type for
    the status (429 rate_limit_error, 529 overloaded_error, OpenAI 503 server_error, ...)."""

    status: int
    retry_after: float | None = None
    kind: str = ""
    message: str = "scripted fault"


Script = Callable[[Request], Answer | Fault]


def in_order(*replies: Answer | Fault) -> Script:
    """A script that gives `replies` one per request, then fails the test if asked again."""
    remaining = list(replies)
    lock = threading.Lock()

    def script(request: Request) -> Answer | Fault:
        with lock:
            if not remaining:
                raise AssertionError(f"in_order: request {len(replies) + 1} was not expected")
            return remaining.pop(0)

    return script
