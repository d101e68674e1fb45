"""Anthropic's Messages API, as the WireServer speaks it: the request read into the neutral view (and
refused with the API's own 400s where a real server would), the neutral answer written as a Message."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from tests.llm.script import Answer, CallView, Request, ResultView, Turn

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class BadRequest(Exception):
    """A request the real API would refuse with a 400; the message is the API's complaint."""


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind or ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def model_body(model: str) -> dict[str, Any]:
    return {"type": "model", "id": model, "display_name": model, "created_at": "2025-01-01T00:00:00Z"}


def models_body(models: list[str]) -> dict[str, Any]:
    data = [model_body(model) for model in models]
    return {"data": data, "has_more": False, "first_id": models[0] if models else None, "last_id": None}


def sign(thinking: str) -> str:
    """The signature a thinking block carries, so the server can tell it came back unchanged."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def view(body: dict[str, Any], headers: Mapping[str, str]) -> Request:
    thinking = body.get("thinking") or {}
    budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
    if budget is not None and body["max_tokens"] <= budget:
        raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
    if _count_cache_control(body) > 4:
        raise BadRequest(
            f"A maximum of 4 blocks with cache_control may be provided. Found {_count_cache_control(body)}."
        )
    turns: list[Turn] = []
    for index, message in enumerate(body["messages"]):
        turns.append(_turn(message, turns[-1] if turns else None, where=f"messages.{index}"))
    _check_answered(turns)
    if budget is not None:
        _check_thinking_first(body["messages"])
    return Request(
        flavor="anthropic",
        model=body["model"],
        system=_system(body.get("system", "")),
        turns=tuple(turns),
        tools=tuple(tool["name"] for tool in body.get("tools", [])),
        max_tokens=body["max_tokens"],
        thinking_budget=budget,
        headers=headers,
    )


def render(answer: Answer, request: Request) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.thinking and request.thinking_budget is not None:
        content.append({"type": "thinking", "thinking": answer.thinking, "signature": sign(answer.thinking)})
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.calls:
        arguments = call.arguments if isinstance(call.arguments, dict) else _object_or_raw(call.arguments)
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:20]}",
                "name": call.name,
                "input": arguments,
            }
        )
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": answer.stop_reason or ("tool_use" if answer.calls else "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": max(0, answer.input_tokens - answer.cached_tokens - answer.cache_write_tokens),
            "output_tokens": answer.output_tokens,
            "cache_read_input_tokens": answer.cached_tokens,
            "cache_creation_input_tokens": answer.cache_write_tokens,
        },
    }


def _object_or_raw(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _system(system: str | list[dict[str, Any]]) -> str:
    return system if isinstance(system, str) else "\n".join(block["text"] for block in system)


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _turn(message: dict[str, Any], previous: Turn | None, *, where: str) -> Turn:
    names = {call.id: call.name for call in previous.calls} if previous else {}
    texts, calls, results, thinking, images = [], [], [], [], 0
    for index, block in enumerate(_blocks(message["content"])):
        kind = block["type"]
        if kind == "text":
            if not block["text"]:
                raise BadRequest(f"{where}.content.{index}: text content blocks must be non-empty")
            texts.append(block["text"])
        elif kind == "image":
            images += 1
        elif kind == "tool_use":
            calls.append(CallView(block["id"], block["name"], block["input"], json.dumps(block["input"])))
        elif kind == "tool_result":
            results.append(_result(block, names, where=f"{where}.content.{index}"))
        elif kind == "thinking":
            if block.get("signature") != sign(block["thinking"]):
                raise BadRequest(f"{where}.content.{index}: Invalid `signature` in `thinking` block")
            thinking.append(block["thinking"])
        elif kind == "redacted_thinking":
            thinking.append(block["data"])
    return Turn(message["role"], "\n".join(texts), tuple(calls), tuple(results), images, tuple(thinking))


def _result(block: dict[str, Any], names: Mapping[str, str], *, where: str) -> ResultView:
    call_id = block["tool_use_id"]
    if call_id not in names:
        raise BadRequest(
            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {call_id}. Each `tool_result` "
            "block must have a corresponding `tool_use` block in the previous message."
        )
    parts = _blocks(block.get("content", []))
    text = "\n".join(part["text"] for part in parts if part["type"] == "text")
    images = sum(part["type"] == "image" for part in parts)
    return ResultView(call_id, names[call_id], text, images, bool(block.get("is_error")))


def _check_answered(turns: list[Turn]) -> None:
    for index, (turn, following) in enumerate(zip(turns, turns[1:], strict=False)):
        unanswered = {call.id for call in turn.calls} - {result.call_id for result in following.results}
        if unanswered:
            raise BadRequest(
                f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(sorted(unanswered))}"
            )


def _check_thinking_first(messages: list[dict[str, Any]]) -> None:
    assistant = [message for message in messages if message["role"] == "assistant"]
    if not assistant:
        return
    blocks = _blocks(assistant[-1]["content"])
    if any(block["type"] == "tool_use" for block in blocks) and blocks[0]["type"] not in (
        "thinking",
        "redacted_thinking",
    ):
        raise BadRequest(
            f"Expected `thinking` or `redacted_thinking`, but found `{blocks[0]['type']}`. When "
            "`thinking` is enabled, a final `assistant` message must start with a thinking block."
        )


def _count_cache_control(value: Any) -> int:
    if isinstance(value, dict):
        return ("cache_control" in value) + sum(_count_cache_control(item) for item in value.values())
    if isinstance(value, list):
        return sum(_count_cache_control(item) for item in value)
    return 0
