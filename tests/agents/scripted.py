"""A scripted model for unit tests of the loop: it replies with canned content, one step per call."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.agents.compaction import tokens
from shared.llm.port import Block, Message, Reply, Text, ToolCall, ToolSpec, Usage

Step = tuple[Block, ...] | Exception
Script = Sequence[Step] | Callable[[Sequence[Message]], Step]

_ids = itertools.count(1)


def call(name: str, **arguments: Any) -> ToolCall:
    """A well-formed tool call with a fresh id."""
    return ToolCall(f"call-{next(_ids)}", name, arguments)


def report(summary: str = "done") -> ToolCall:
    return call("report", summary=summary)


def say(text: str) -> tuple[Block, ...]:
    return (Text(text),)


@dataclass
class Scripted:
    """A `ModelClient` that plays `script`: a list of steps, or a function of the messages so far.

    A step is the reply's content, or an exception to raise. Usage is counted as a provider would:
    the request's tokens (roughly) in, ten out. `delay` is each call's latency."""

    script: Script
    context_tokens: int = 200_000
    delay: float = 0.0
    provider: str = "scripted"
    model: str = "scripted-1"
    requests: list[list[Message]] = field(default_factory=list)
    specs: list[ToolSpec] = field(default_factory=list)

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Reply:
        self.requests.append(list(messages))
        self.specs = list(tools)
        if self.delay:
            await asyncio.sleep(self.delay)
        step = self.script(messages) if callable(self.script) else self.script[len(self.requests) - 1]
        if isinstance(step, Exception):
            raise step
        used = tokens(messages, system, json.dumps([spec.parameters for spec in tools]))
        return Reply(step, Usage(input_tokens=used, output_tokens=10), stop_reason="end", model=self.model)
