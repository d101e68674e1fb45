"""The port over OpenAI's Chat Completions with function calling, for OpenAI itself and for the servers
that speak its dialect (vLLM, Ollama, llama.cpp server, LiteLLM: provider "openai-compatible").

Chat Completions has no image in a tool message, so a tool result's images follow the tool messages
as one user message, each group introduced by a text part naming its call. Thinking blocks have no
place here and are dropped.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

import openai

from shared.events.catalogue import ModelChoice
from shared.llm.port import Image, Message, Reply, Text, ToolCall, ToolResult, ToolSpec, Usage
from shared.llm.retry import DEFAULT_RETRY, Failure, RetryPolicy, call_with_retries

__all__ = ["OpenAIClient", "images_caption"]


def images_caption(call_id: str) -> str:
    """The text part that introduces the images of one tool result in the user message after it."""
    return f"[images from tool call {call_id}]"


class OpenAIClient:
    def __init__(
        self,
        choice: ModelChoice,
        api_key: str,
        base_url: str | None,
        timeout_s: float = 600.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.provider = choice.provider
        self.model = choice.model
        self.context_tokens = choice.context_tokens
        self._choice = choice
        self._key = api_key
        self._retry = retry
        self._timeout_s = timeout_s
        self._sdk = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)
        self.base_url = str(self._sdk.base_url)

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Reply:
        # OpenAI's reasoning models refuse `max_tokens`; most compatible servers know only that one.
        limit = "max_completion_tokens" if self.provider == "openai" else "max_tokens"
        request: dict[str, Any] = {
            "model": self.model,
            "messages": ([{"role": "system", "content": system}] if system else []) + _to_wire(messages),
            limit: max_tokens,
        }
        if tools:
            request["tools"] = [_tool(tool) for tool in tools]
        started = time.monotonic()
        response, retries = await call_with_retries(
            lambda: self._sdk.chat.completions.create(**request),
            self._describe,
            label=self._choice.label,
            policy=self._retry,
        )
        choice = response.choices[0]
        content = ([Text(choice.message.content)] if choice.message.content else []) + [
            _tool_call(call) for call in choice.message.tool_calls or () if call.type == "function"
        ]
        return Reply(
            content=tuple(content),
            usage=_usage(response.usage),
            stop_reason=choice.finish_reason or "",
            model=response.model or self.model,
            seconds=time.monotonic() - started,
            retries=retries,
            request_id=response._request_id or "",
        )

    async def probe(self) -> None:
        """One call, no retries: raises LlmError when the key, URL or model is wrong. Compatible
        servers are asked for their model list only: llama.cpp and others serve any model name."""
        models = self._sdk.models

        async def fetch() -> object:
            return await (models.retrieve(self.model) if self.provider == "openai" else models.list())

        await call_with_retries(
            fetch, self._describe, label=self._choice.label, policy=RetryPolicy(attempts=1)
        )

    async def aclose(self) -> None:
        await self._sdk.close()

    def _describe(self, exc: Exception) -> Failure | None:
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            kind = body.get("code") or body.get("type")
            message = (f"{kind}: " if kind else "") + str(body.get("message") or exc.message)
            return Failure(exc.status_code, self._scrub(message), dict(exc.response.headers))
        if isinstance(exc, openai.APITimeoutError):
            return Failure(None, f"no answer from {self.base_url} within {self._timeout_s:g} s")
        if isinstance(exc, openai.APIConnectionError):
            return Failure(None, f"cannot reach {self.base_url} ({exc.__cause__ or exc.message})")
        return None

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text


def _tool(tool: ToolSpec) -> dict[str, Any]:
    spec = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    return {"type": "function", "function": spec}


def _to_wire(messages: Sequence[Message]) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    for message in messages:
        wire += _assistant(message) if message.role == "assistant" else _user(message)
    return wire


def _assistant(message: Message) -> list[dict[str, Any]]:
    text = "\n".join(block.text for block in message.content if isinstance(block, Text))
    calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": block.raw_arguments or json.dumps(block.arguments)},
        }
        for block in message.content
        if isinstance(block, ToolCall)
    ]
    wire: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        wire["tool_calls"] = calls
    return [wire]


def _user(message: Message) -> list[dict[str, Any]]:
    """Tool messages first (the API wants them right after the calls), then one user message with
    the rest: the results' images, the user's own text and images."""
    tool_messages, parts = [], []
    for block in message.content:
        if isinstance(block, ToolResult):
            content = f"Error: {block.content}" if block.is_error else block.content
            tool_messages.append({"role": "tool", "tool_call_id": block.call_id, "content": content})
            if block.images:
                parts += [{"type": "text", "text": images_caption(block.call_id)}]
                parts += [_image(image) for image in block.images]
        elif isinstance(block, Text) and block.text:
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, Image):
            parts.append(_image(block))
    if not parts:
        return tool_messages
    if all(part["type"] == "text" for part in parts):  # plain text: what every compatible server reads
        return [*tool_messages, {"role": "user", "content": "\n".join(part["text"] for part in parts)}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _image(image: Image) -> dict[str, Any]:
    data = base64.b64encode(image.data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{image.media_type};base64,{data}"}}


_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _tool_call(call: Any) -> ToolCall:
    raw = call.function.arguments or ""
    name = call.function.name
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        problem = f"are not valid JSON ({exc.msg} at character {exc.pos})"
    else:
        if isinstance(arguments, dict):
            return ToolCall(call.id, name, arguments, raw_arguments=raw)
        problem = f"are a JSON {_JSON_TYPES.get(type(arguments), 'value')}, not an object"
    error = f"the arguments of {name} {problem}; call it again with one JSON object matching its parameters"
    return ToolCall(call.id, name, None, raw_arguments=raw, error=error)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(details.cached_tokens or 0) if details else 0,
    )
