"""A turn as a JSON document (stored as a blob, named by the `agent-turn` event), and its rendering.

Every string of the document passes through the caller's `redact` (a tool's output may echo an API
key the model was shown by mistake). Images are recorded by size and sha256, not by their bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

from shared.agents.loop import Turn
from shared.llm.port import Block, Image, Text, Thinking, ToolCall, ToolResult

__all__ = ["FORMAT", "render", "transcript_json"]

FORMAT = "alphalab-transcript/1"
_SYSTEM_CHARS, _TEXT_CHARS, _ARGUMENT_CHARS, _RESULT_CHARS = 800, 2000, 600, 800


def transcript_json(turn: Turn, *, role: str, agent: str, model: str, redact: Callable[[str], str]) -> bytes:
    """The whole turn: system prompt, every message's blocks, per-call usage and timings, caps, end."""
    document = {
        "format": FORMAT,
        "role": role,
        "agent": agent,
        "model": model,
        "ended": turn.ended,
        "ended_by": turn.ended_by,
        "summary": turn.summary,
        "system": turn.system,
        "tools": list(turn.tools),
        "caps": dataclasses.asdict(turn.caps),
        "totals": {
            "model_calls": turn.model_calls,
            "tool_calls": turn.tool_calls,
            "nudges": turn.nudges,
            **dataclasses.asdict(turn.usage),
            "seconds": turn.seconds,
            "overhead_seconds_per_call": turn.overhead_per_call,
        },
        "calls": [dataclasses.asdict(call) for call in turn.calls],
        "compactions": [dataclasses.asdict(compaction) for compaction in turn.compactions],
        "messages": [
            {"role": message.role, "blocks": [_block(block) for block in message.content]}
            for message in turn.messages
        ],
    }
    return json.dumps(_redacted(document, redact), ensure_ascii=False, indent=1).encode()


def render(document: bytes) -> str:
    """A transcript for the console: a header, each message with its tool calls and (cut) results,
    the summary and the totals."""
    turn = json.loads(document)
    totals = turn["totals"]
    lines = [
        f"{turn['role']} · {turn['agent']} · {turn['model']}",
        f"ended: {turn['ended']}" + (f" (by {turn['ended_by']})" if turn["ended_by"] else ""),
        "",
        "── system",
        _cut(turn["system"], _SYSTEM_CHARS),
    ]
    names: dict[str, str] = {}
    calls = iter(turn["calls"])
    for message in turn["messages"]:
        heading = f"── {message['role']}"
        if message["role"] == "assistant":
            call = next(calls, None)
            if call is not None:
                usage = call["usage"]
                heading += f"  ({usage['input_tokens']:,} in, {usage['output_tokens']:,} out, "
                heading += f"{call['model_seconds']:.1f} s)"
        lines += ["", heading, *(_rendered(block, names) for block in message["blocks"])]
    lines += ["", f"summary: {turn['summary'] or '(none)'}", _totals(totals)]
    lines += [
        f"compacted before call {c['model_call']}: ~{c['tokens_before']:,} -> ~{c['tokens_after']:,} "
        f"tokens ({c['elided_blocks']} blocks elided, {c['dropped_exchanges']} exchanges dropped)"
        for c in turn["compactions"]
    ]
    return "\n".join(lines)


def _block(block: Block) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, Thinking):
        return {"type": "thinking", "text": block.text, "redacted": block.redacted}
    if isinstance(block, ToolCall):
        called = {"type": "tool_call", "id": block.id, "name": block.name, "arguments": block.arguments}
        if block.arguments is None:
            called |= {"raw_arguments": block.raw_arguments, "error": block.error}
        return called
    if isinstance(block, ToolResult):
        return {
            "type": "tool_result",
            "call_id": block.call_id,
            "content": block.content,
            "is_error": block.is_error,
            "images": [_image(image) for image in block.images],
        }
    return {"type": "image", **_image(block)}


def _image(image: Image) -> dict[str, Any]:
    return {
        "media_type": image.media_type,
        "bytes": len(image.data),
        "sha256": hashlib.sha256(image.data).hexdigest(),
    }


def _redacted(node: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return redact(node)
    if isinstance(node, dict):
        return {redact(str(key)): _redacted(value, redact) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_redacted(item, redact) for item in node]
    return node


def _rendered(block: dict[str, Any], names: dict[str, str]) -> str:
    kind = block["type"]
    if kind == "text":
        return _cut(block["text"], _TEXT_CHARS)
    if kind == "thinking":
        return f"  (thinking) {_cut(block['text'], _RESULT_CHARS)}"
    if kind == "tool_call":
        names[block["id"]] = block["name"]
        given = block["arguments"] if block["arguments"] is not None else block.get("raw_arguments", "")
        return f"  → {block['name']} {_cut(json.dumps(given, ensure_ascii=False), _ARGUMENT_CHARS)}"
    if kind == "tool_result":
        mark = "✗" if block["is_error"] else "←"
        images = "".join(f" [image {i['media_type']}, {i['bytes']:,} bytes]" for i in block["images"])
        name = names.get(block["call_id"], "?")
        return f"  {mark} {name}:{images} {_cut(block['content'], _RESULT_CHARS)}"
    return f"  [image {block['media_type']}, {block['bytes']:,} bytes]"


def _totals(totals: dict[str, Any]) -> str:
    return (
        f"{totals['model_calls']} model calls, {totals['tool_calls']} tool calls, "
        f"{totals['input_tokens']:,} in / {totals['output_tokens']:,} out / "
        f"{totals['cached_tokens']:,} cached tokens, {totals['seconds']:.1f} s, "
        f"loop overhead {1000 * totals['overhead_seconds_per_call']:.1f} ms per call"
    )


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [{len(text) - limit:,} more characters]"
