"""The port over Anthropic's Messages API (non-streaming), with extended thinking and prompt caching.

Thinking blocks are sent back unchanged, signature included: the API refuses a tool-use turn whose
thinking was altered or dropped. Cache breakpoints sit on the system prompt, the last tool and the
last block of the latest message, so each turn of a tool loop reads the prefix the previous one wrote.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

import anthropic

from shared.events.catalogue import ModelChoice
from shared.llm.port import (
    Block,
    Image,
    Message,
    Reply,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from shared.llm.retry import DEFAULT_RETRY, Failure, RetryPolicy, call_with_retries

__all__ = ["AnthropicClient"]

_CACHE = {"type": "ephemeral"}


class AnthropicClient:
    provider = "anthropic"

    def __init__(
        self,
        choice: ModelChoice,
        api_key: str,
        base_url: str | None,
        timeout_s: float = 600.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.model = choice.model
        self.context_tokens = choice.context_tokens
        self._choice = choice
        self._key = api_key
        self._retry = retry
        self._timeout_s = timeout_s
        self._sdk = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )
        self.base_url = str(self._sdk.base_url)

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Reply:
        """`max_tokens` bounds the answer; a thinking budget, when set, comes on top of it (the API
        counts thinking inside `max_tokens` and wants it strictly larger than the budget)."""
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": _cache_last(_to_wire(messages, keep_thinking=self._thinking)),
        }
        if system:
            request["system"] = [{"type": "text", "text": system, "cache_control": _CACHE}]
        if tools:
            request["tools"] = _tools(tools)
        if self._thinking:
            budget = self._choice.thinking_tokens
            request["thinking"] = {"type": "enabled", "budget_tokens": budget}
            request["max_tokens"] = max_tokens + budget
        started = time.monotonic()
        response, retries = await call_with_retries(
            lambda: self._sdk.messages.create(**request),
            self._describe,
            label=self._choice.label,
            policy=self._retry,
        )
        return Reply(
            content=tuple(_from_wire(block) for block in response.content if _known(block)),
            usage=_usage(response.usage),
            stop_reason=response.stop_reason or "",
            model=response.model,
            seconds=time.monotonic() - started,
            retries=retries,
            request_id=response._request_id or "",
        )

    async def probe(self) -> None:
        """One models.retrieve, no retries: raises LlmError when the key, URL or model is wrong."""
        await call_with_retries(
            lambda: self._sdk.models.retrieve(self.model),
            self._describe,
            label=self._choice.label,
            policy=RetryPolicy(attempts=1),
        )

    async def aclose(self) -> None:
        await self._sdk.close()

    @property
    def _thinking(self) -> bool:
        return self._choice.thinking_tokens is not None

    def _describe(self, exc: Exception) -> Failure | None:
        if isinstance(exc, anthropic.APIStatusError):
            kind = f"{exc.type}: " if exc.type else ""
            message = kind + (exc.api_message or exc.message)
            return Failure(exc.status_code, self._scrub(message), dict(exc.response.headers))
        if isinstance(exc, anthropic.APITimeoutError):
            return Failure(None, f"no answer from {self.base_url} within {self._timeout_s:g} s")
        if isinstance(exc, anthropic.APIConnectionError):
            return Failure(None, f"cannot reach {self.base_url} ({exc.__cause__ or exc.message})")
        return None

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text


def _tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    wire = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]
    wire[-1]["cache_control"] = _CACHE
    return wire


def _to_wire(messages: Sequence[Message], *, keep_thinking: bool) -> list[dict[str, Any]]:
    """The API refuses empty text blocks; thinking goes back only while thinking is on."""
    wire = []
    for message in messages:
        blocks = [
            _block(block)
            for block in message.content
            if not (isinstance(block, Text) and not block.text)
            and (keep_thinking or not isinstance(block, Thinking))
        ]
        wire.append({"role": message.role, "content": blocks})
    return wire


def _cache_last(wire: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A thinking block cannot carry a breakpoint; a latest message ending in one goes without."""
    last = wire[-1]["content"] if wire else []
    if last and last[-1]["type"] not in ("thinking", "redacted_thinking"):
        last[-1]["cache_control"] = _CACHE
    return wire


def _block(block: Block) -> dict[str, Any]:
    match block:
        case Text(text):
            return {"type": "text", "text": text}
        case Thinking(text, _, True):
            return {"type": "redacted_thinking", "data": text}  # Thinking.text holds the opaque data
        case Thinking(text, signature, False):
            return {"type": "thinking", "thinking": text, "signature": signature}
        case ToolCall(call_id, name, arguments):
            return {"type": "tool_use", "id": call_id, "name": name, "input": arguments or {}}
        case ToolResult(call_id, content, images, is_error):
            parts = ([{"type": "text", "text": content}] if content else []) + [_image(i) for i in images]
            return {"type": "tool_result", "tool_use_id": call_id, "content": parts, "is_error": is_error}
        case Image():
            return _image(block)
    raise TypeError(f"not a content block: {block!r}")


def _image(image: Image) -> dict[str, Any]:
    data = base64.b64encode(image.data).decode("ascii")
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": data}}


def _known(block: Any) -> bool:
    return block.type in ("text", "thinking", "redacted_thinking", "tool_use")


def _from_wire(block: Any) -> Block:
    if block.type == "text":
        return Text(block.text)
    if block.type == "thinking":
        return Thinking(block.thinking, signature=block.signature)
    if block.type == "redacted_thinking":
        return Thinking(block.data, redacted=True)
    arguments = block.input if isinstance(block.input, dict) else None
    error = None if arguments is not None else f"the arguments of {block.name} were not a JSON object"
    return ToolCall(block.id, block.name, arguments, raw_arguments=json.dumps(block.input), error=error)


def _usage(usage: Any) -> Usage:
    cached = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=usage.input_tokens + cached + written,
        output_tokens=usage.output_tokens,
        cached_tokens=cached,
        cache_write_tokens=written,
    )
