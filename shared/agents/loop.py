"""The one agent loop every LLM role runs: call the model, answer its tool calls, until it reports.

A turn ends when the model calls `report` (or a tool whose output ends the turn), when it stops
calling tools after a few nudges, at the first cap reached, or at a model error; it never raises
for any of these. Cancellation propagates, and kills whatever shell command was running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from shared.agents.compaction import Compaction, compact, tokens
from shared.agents.tools import Tool, ToolOutput, execute
from shared.llm.errors import LlmError
from shared.llm.port import Message, ModelClient, Reply, Text, ToolCall, ToolResult, Usage

__all__ = ["REPORT", "REPORTED", "Call", "Caps", "Turn", "run_turn"]

log = structlog.get_logger(__name__)

REPORT = "report"
REPORTED = "reported"
NUDGE = "Call a tool to go on; when the work is done, call report with a summary."
_EMPTY_REPLY = "(empty reply)"  # providers refuse an assistant message with no content


@dataclass(frozen=True, slots=True)
class Caps:
    """What one turn may spend. Each is checked before every model call; the first one reached ends
    the turn, named in `Turn.ended`. `max_tokens` sums input and output tokens over the turn's calls;
    `compact_at` is the share of the model's context window past which the conversation is compacted."""

    max_tool_calls: int = 40
    max_model_calls: int = 60
    max_tokens: int = 2_000_000
    max_seconds: float = 1800.0
    max_nudges: int = 3
    max_output_tokens: int = 8192
    compact_at: float = 0.6


@dataclass(frozen=True, slots=True)
class Call:
    """One model call and the step around it. `overhead_seconds` is the loop's own time in the step:
    all of it but the model call, the tools and the caller's `on_call`."""

    usage: Usage
    stop_reason: str
    tool_calls: int
    model_seconds: float
    tool_seconds: float
    callback_seconds: float
    overhead_seconds: float
    retries: int = 0
    request_id: str = ""


@dataclass(frozen=True)
class Turn:
    """A finished turn. `ended`: 'reported' (report or another tool that ends the turn, named in
    `ended_by`), 'no tool call', a cap's name ('max_tool_calls', ...) or 'model error: ...'.
    `messages` is the whole conversation as it happened, never compacted; `tool_calls` counts the
    tool calls run, report excepted."""

    ended: str
    ended_by: str
    summary: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[str, ...]
    caps: Caps
    tool_calls: int
    model_calls: int
    nudges: int
    usage: Usage
    seconds: float
    calls: tuple[Call, ...]
    compactions: tuple[Compaction, ...]

    @property
    def reported(self) -> bool:
        return self.ended == REPORTED

    @property
    def overhead_per_call(self) -> float:
        """The loop's mean latency per model call, in seconds (see `Call.overhead_seconds`)."""
        return sum(call.overhead_seconds for call in self.calls) / len(self.calls) if self.calls else 0.0


class ReportArguments(BaseModel):
    """Ending a turn never fails on a formality: a report whose text came under another name (the
    reference's `report_to_user` took `message`) still ends the turn with that text."""

    model_config = ConfigDict(extra="allow")
    summary: str = Field(default="", description="what was done and found, and what is left")

    @property
    def text(self) -> str:
        extra = [str(value) for value in (self.model_extra or {}).values() if isinstance(value, str)]
        return self.summary or "\n".join(extra)


async def run_turn(
    client: ModelClient,
    *,
    system: str,
    prompt: str,
    tools: Sequence[Tool[Any]],
    caps: Caps,
    on_call: Callable[[Reply], Awaitable[None]] | None = None,
    stop: Callable[[], str | None] | None = None,
) -> Turn:
    """Run one turn of an agent on `prompt`. `on_call(reply)` is awaited after every model call (to
    publish `llm-call-finished`); its own errors propagate, as do the client's other than `LlmError`.
    `stop()` is asked before every model call, like the caps: a reason ends the turn (a spent budget)."""
    run = _Run(client, system, tools, caps, on_call, stop)
    ended = await run.loop(Message.user(prompt))
    turn = run.turn(ended)
    log.info(
        "turn ended",
        ended=turn.ended,
        model_calls=turn.model_calls,
        tool_calls=turn.tool_calls,
        input_tokens=turn.usage.input_tokens,
        output_tokens=turn.usage.output_tokens,
        seconds=round(turn.seconds, 2),
        overhead_per_call=round(turn.overhead_per_call, 4),
    )
    return turn


@dataclass
class _Run:
    client: ModelClient
    system: str
    given: Sequence[Tool[Any]]
    caps: Caps
    on_call: Callable[[Reply], Awaitable[None]] | None
    stop: Callable[[], str | None] | None
    history: list[Message] = field(default_factory=list)  # everything, for the transcript
    context: list[Message] = field(default_factory=list)  # what the model is sent: compacted
    calls: list[Call] = field(default_factory=list)
    compactions: list[Compaction] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    tool_calls: int = 0
    nudges: int = 0
    dropped: int = 0
    summary: str = ""
    ended_by: str = ""
    measured: tuple[int, int] | None = None  # (input tokens of the last call, context length then)

    def __post_init__(self) -> None:
        report = Tool(REPORT, "End the turn with a summary of it.", ReportArguments, self._report)
        if any(tool.name == REPORT for tool in self.given):
            raise ValueError(f"the loop provides the tool {REPORT!r}; a caller's tool may not be named so")
        self.tools = {tool.name: tool for tool in (*self.given, report)}
        self.specs = [tool.spec for tool in self.tools.values()]
        self.fixed = tokens([], self.system, json.dumps([dataclasses.asdict(spec) for spec in self.specs]))
        self.begun = time.monotonic()
        self.deadline = asyncio.get_running_loop().time() + self.caps.max_seconds

    async def loop(self, prompt: Message) -> str:
        self._add(prompt)
        while True:
            step = time.monotonic()
            cap = self._cap_reached()
            if cap is not None:
                return cap
            self._compact_if_needed()
            try:
                reply, model_seconds = await self._complete()
            except LlmError as err:
                return f"model error: {err}"
            except _OutOfTime:
                return "max_seconds"
            callback_seconds = await self._called_back(reply)
            self._add(Message("assistant", reply.content or (Text(_EMPTY_REPLY),)))
            ended, tool_seconds = await self._answer(reply)
            spent = model_seconds + tool_seconds + callback_seconds
            self.calls.append(
                Call(
                    reply.usage,
                    reply.stop_reason,
                    len(reply.tool_calls),
                    model_seconds,
                    tool_seconds,
                    callback_seconds,
                    time.monotonic() - step - spent,
                    reply.retries,
                    reply.request_id,
                )
            )
            if ended is not None:
                return ended

    def turn(self, ended: str) -> Turn:
        return Turn(
            ended=ended,
            ended_by=self.ended_by,
            summary=self.summary,
            system=self.system,
            messages=tuple(self.history),
            tools=tuple(self.tools),
            caps=self.caps,
            tool_calls=self.tool_calls,
            model_calls=len(self.calls),
            nudges=self.nudges,
            usage=self.usage,
            seconds=time.monotonic() - self.begun,
            calls=tuple(self.calls),
            compactions=tuple(self.compactions),
        )

    def _cap_reached(self) -> str | None:
        caps, usage = self.caps, self.usage
        stopped = self.stop() if self.stop is not None else None
        if stopped is not None:
            return stopped
        if len(self.calls) >= caps.max_model_calls:
            return "max_model_calls"
        if usage.input_tokens + usage.output_tokens >= caps.max_tokens:
            return "max_tokens"
        if time.monotonic() - self.begun >= caps.max_seconds:
            return "max_seconds"
        if self.tool_calls >= caps.max_tool_calls:
            return "max_tool_calls"
        return None

    def _compact_if_needed(self) -> None:
        """Compact when the next request is estimated to pass `compact_at` of the context window: the
        last call's input tokens, as the provider counted them, plus what was added since."""
        if self.measured is None:
            estimate = self.fixed + tokens(self.context)
        else:
            measured, length = self.measured
            estimate = measured + tokens(self.context[length:])
        budget = int(self.caps.compact_at * self.client.context_tokens)
        if estimate <= budget:
            return
        room = budget - self.fixed
        done = compact(self.history[0], self.context[1:], budget=room, dropped_before=self.dropped)
        self.context, self.dropped, self.measured = done.messages, self.dropped + done.dropped_exchanges, None
        after = self.fixed + tokens(self.context)
        record = Compaction(len(self.calls) + 1, estimate, after, done.elided_blocks, done.dropped_exchanges)
        self.compactions.append(record)
        log.info("context compacted", **dataclasses.asdict(record))

    async def _complete(self) -> tuple[Reply, float]:
        begun = time.monotonic()
        request = list(self.context)
        try:
            async with asyncio.timeout_at(self.deadline) as limit:
                reply = await self.client.complete(
                    self.system, request, self.specs, max_tokens=self.caps.max_output_tokens
                )
        except TimeoutError:
            if limit.expired():
                raise _OutOfTime from None
            raise
        self.measured = (reply.usage.input_tokens, len(request)) if reply.usage.input_tokens else None
        self.usage = _added(self.usage, reply.usage)
        return reply, time.monotonic() - begun

    async def _called_back(self, reply: Reply) -> float:
        if self.on_call is None:
            return 0.0
        begun = time.monotonic()
        await self.on_call(reply)
        return time.monotonic() - begun

    async def _answer(self, reply: Reply) -> tuple[str | None, float]:
        """Run the reply's tool calls in order and answer each (one user message); or nudge. The turn's
        end, if this step ends it, and the seconds the tools took."""
        calls = reply.tool_calls
        if not calls:
            if self.nudges >= self.caps.max_nudges:
                return "no tool call", 0.0
            self.nudges += 1
            self._add(Message.user(NUDGE))
            return None, 0.0
        results: list[ToolResult] = []
        ended: str | None = None
        capped = False
        begun = time.monotonic()
        for call in calls:
            if ended is not None:
                results.append(ToolResult(call.id, f"not run: the turn ended ({ended})", is_error=True))
                continue
            if call.name != REPORT and self.tool_calls >= self.caps.max_tool_calls:
                capped = True  # a report later in the reply still ends the turn as reported
                note = f"not run: this turn's {self.caps.max_tool_calls} tool calls are used up"
                results.append(ToolResult(call.id, note, is_error=True))
                continue
            output = await self._run_tool(call)
            if output is None:
                ended = "max_seconds"
                results.append(ToolResult(call.id, "not finished: the turn's time ran out", is_error=True))
                continue
            results.append(ToolResult(call.id, output.text, output.images, output.is_error))
            if output.ends_turn:
                ended, self.ended_by = REPORTED, call.name
                if call.name != REPORT:
                    self.summary = output.text
        self._add(Message("user", tuple(results)))
        return ended or ("max_tool_calls" if capped else None), time.monotonic() - begun

    async def _run_tool(self, call: ToolCall) -> ToolOutput | None:
        """The call's output; None if the turn's time ran out meanwhile (the tool was cancelled)."""
        if call.name != REPORT:
            self.tool_calls += 1
        try:
            async with asyncio.timeout_at(self.deadline) as limit:
                return await execute(self.tools, call)
        except TimeoutError:
            if limit.expired():
                return None
            raise

    async def _report(self, arguments: ReportArguments) -> ToolOutput:
        self.summary = arguments.text
        return ToolOutput("reported", ends_turn=True)

    def _add(self, message: Message) -> None:
        self.history.append(message)
        self.context.append(message)


class _OutOfTime(Exception):
    """The turn's `max_seconds` ran out during a model call."""


def _added(total: Usage, more: Usage) -> Usage:
    return Usage(
        total.input_tokens + more.input_tokens,
        total.output_tokens + more.output_tokens,
        total.cached_tokens + more.cached_tokens,
        total.cache_write_tokens + more.cache_write_tokens,
    )
