"""The one port every agent talks to a model through: `ModelClient.complete(system, messages, tools)`.

Messages are provider-neutral content blocks; each provider adapter (`shared.llm.anthropic_messages`,
`shared.llm.openai_chat`) translates them to its wire format and back. A reply always carries its usage,
so the caller can account for tokens and dollars without knowing the provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "Block",
    "Image",
    "Message",
    "ModelClient",
    "Reply",
    "Text",
    "Thinking",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: `parameters` is its arguments' JSON Schema (an object schema)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """Extended thinking (Anthropic): sent back unchanged with the tool results that follow it."""

    text: str
    signature: str = ""
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model made. `arguments` is None when `raw_arguments` was not a JSON object;
    `error` then says why, so the loop can answer with an error the model can act on."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: bytes


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    content: str
    images: tuple[Image, ...] = ()
    is_error: bool = False


Block = Text | Thinking | ToolCall | ToolResult | Image


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant"]
    content: tuple[Block, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (Text(text),))


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0  # every prompt token, cached ones included
    output_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the provider's cache (billed at the cached rate)
    cache_write_tokens: int = 0  # prompt tokens written to the cache (Anthropic bills them above input)


@dataclass(frozen=True, slots=True)
class Reply:
    content: tuple[Block, ...]  # Text, Thinking and ToolCall blocks, in the model's order
    usage: Usage
    stop_reason: str = ""
    model: str = ""
    seconds: float = 0.0  # the call's wall time, retries and their waits included
    retries: int = 0
    request_id: str = ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [block for block in self.content if isinstance(block, ToolCall)]

    @property
    def text(self) -> str:
        return "\n".join(block.text for block in self.content if isinstance(block, Text))


class ModelClient(Protocol):
    """One model of one provider. `complete` raises `LlmError` (shared.llm.errors) when the call fails
    for good (after retries); every other outcome is a `Reply`."""

    provider: str
    model: str
    context_tokens: int  # the model's context window
    base_url: str

    async def probe(self) -> None:
        """One cheap call (the model's listing): raises LlmError if the key, URL or model is wrong."""
        ...

    async def aclose(self) -> None: ...

    async def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        max_tokens: int,
    ) -> Reply: ...
