"""Keeping a turn's conversation inside the model's context window, mechanically.

The prompt (the first user message) and the last few exchanges stay whole. Older exchanges keep
their shape — every tool call still has its result, so the provider accepts the history — but their
tool results and long call arguments shrink to a note of what was there. If that is not enough, the
oldest exchanges are dropped whole, an assistant message with the user message that answers it, and
the prompt says how many went.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from shared.llm.port import Block, Image, Message, Text, Thinking, ToolCall, ToolResult

__all__ = ["KEPT_EXCHANGES", "Compaction", "Compacted", "compact", "tokens"]

KEPT_EXCHANGES = 3
_CHARS_PER_TOKEN = 4
_IMAGE_TOKENS = 1600  # about what a provider charges for an image of a megapixel or so
_ELIDED_ARGUMENT_CHARS = 400
_ELIDED_RESULT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Compaction:
    """One compaction, before the model call numbered `model_call` (from 1); token counts estimated."""

    model_call: int
    tokens_before: int
    tokens_after: int
    elided_blocks: int
    dropped_exchanges: int


@dataclass(frozen=True, slots=True)
class Compacted:
    messages: list[Message]
    elided_blocks: int
    dropped_exchanges: int  # by this compaction


def tokens(messages: Sequence[Message], *texts: str) -> int:
    """A rough count of the tokens of `messages` and `texts`: characters over four, images fixed."""
    chars = sum(len(text) for text in texts)
    chars += sum(_chars(block) for message in messages for block in message.content)
    return chars // _CHARS_PER_TOKEN


def compact(prompt: Message, messages: Sequence[Message], *, budget: int, dropped_before: int) -> Compacted:
    """`messages` (the conversation after the prompt, starting with an assistant message) fitted into
    `budget` tokens as far as the rules allow; `dropped_before` exchanges went in earlier compactions."""
    exchanges = _exchanges(messages)
    names = {b.id: b.name for m in messages for b in m.content if isinstance(b, ToolCall)}
    old, recent = exchanges[:-KEPT_EXCHANGES], exchanges[-KEPT_EXCHANGES:]
    elided = 0
    shrunk: list[list[Message]] = []
    for exchange in old:
        shrunk.append([])
        for message in exchange:
            blocks = tuple(_elided(block, names) for block in message.content)
            elided += sum(a is not b for a, b in zip(blocks, message.content, strict=True))
            shrunk[-1].append(Message(message.role, blocks))
    dropped = 0
    while True:
        total = dropped_before + dropped
        head = prompt if not total else Message(prompt.role, (*prompt.content, Text(_dropped_note(total))))
        kept = [head, *_flat(shrunk), *_flat(recent)]
        if not shrunk or tokens(kept) <= budget:
            return Compacted(kept, elided, dropped)
        shrunk.pop(0)
        dropped += 1


def _exchanges(messages: Sequence[Message]) -> list[list[Message]]:
    """Each assistant message with the user messages after it (the results of its tool calls)."""
    exchanges: list[list[Message]] = []
    for message in messages:
        if message.role == "assistant" or not exchanges:
            exchanges.append([])
        exchanges[-1].append(message)
    return exchanges


def _flat(exchanges: Sequence[Sequence[Message]]) -> list[Message]:
    return [message for exchange in exchanges for message in exchange]


def _elided(block: Block, names: dict[str, str]) -> Block:
    """`block` itself if it is small or already elided, else a note of what it held."""
    if isinstance(block, ToolResult) and (len(block.content) > _ELIDED_RESULT_CHARS or block.images):
        images = f", {len(block.images)} image(s)" if block.images else ""
        name = names.get(block.call_id, "tool")
        note = f"[elided to fit the context: {name} result of {len(block.content):,} characters{images}]"
        return ToolResult(block.call_id, note, (), block.is_error)
    if isinstance(block, ToolCall) and block.arguments is not None:
        arguments = {key: _shortened(value) for key, value in block.arguments.items()}
        if arguments != block.arguments:
            return ToolCall(block.id, block.name, arguments, json.dumps(arguments), block.error)
    return block


def _shortened(value: object) -> object:
    if isinstance(value, str) and len(value) > _ELIDED_ARGUMENT_CHARS:
        return f"[elided to fit the context: {len(value):,} characters]"
    return value


def _dropped_note(count: int) -> str:
    return f"[{count} earlier exchange{'s' if count > 1 else ''} of this turn dropped to fit the context]"


def _chars(block: Block) -> int:
    if isinstance(block, Text):
        return len(block.text)
    if isinstance(block, Thinking):
        return len(block.text) + len(block.signature)
    if isinstance(block, ToolCall):
        return len(block.name) + len(block.raw_arguments or json.dumps(block.arguments))
    if isinstance(block, ToolResult):
        return len(block.content) + len(block.images) * _IMAGE_TOKENS * _CHARS_PER_TOKEN
    if isinstance(block, Image):
        return _IMAGE_TOKENS * _CHARS_PER_TOKEN
    return 0
