"""OpenAI's Chat Completions, as the WireServer speaks it (also for "openai-compatible" clients).

Tool messages and the user message right after them read as one neutral user turn. Images in that
user message belong to the tool result whose caption (`images_caption`) comes before them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

from shared.llm.openai_chat import images_caption
from tests.llm.script import Answer, CallView, Request, ResultView, Turn

ERROR_TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}
ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


class BadRequest(Exception):
    """A request the real API would refuse with a 400; the message is the API's complaint."""


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    default = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind or default, "param": None, "code": ERROR_CODES.get(status)}
    return {"error": error}


def model_body(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1735689600, "owned_by": "wire"}


def models_body(models: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [model_body(model) for model in models]}


def view(body: dict[str, Any], headers: Mapping[str, str]) -> Request:
    system, turns = [], []
    pending: dict[str, str] = {}  # call id -> tool name, for calls not yet answered
    user: _UserTurn | None = None
    for index, message in enumerate(body["messages"]):
        role = message["role"]
        if pending and role != "tool":
            _unanswered(pending)
        if role in ("system", "developer"):
            system.append(_text(message["content"]))
            continue
        if role == "assistant":
            if user:
                turns.append(user.done())
                user = None
            turn = _assistant(message)
            pending = {call.id: call.name for call in turn.calls}
            turns.append(turn)
            continue
        user = user or _UserTurn()
        if role == "tool":
            call_id = message["tool_call_id"]
            if call_id not in pending:
                raise BadRequest(f"messages.[{index}]: tool_call_id {call_id} answers no preceding tool call")
            user.add_result(call_id, pending.pop(call_id), _text(message["content"]))
        else:
            user.add_content(message["content"])
    if pending:
        _unanswered(pending)
    if user:
        turns.append(user.done())
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return Request(
        flavor="openai",
        model=body["model"],
        system="\n".join(system),
        turns=tuple(turns),
        tools=tuple(tool["function"]["name"] for tool in body.get("tools", [])),
        max_tokens=limit or 0,
        headers=headers,
    )


def render(answer: Answer, request: Request) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(call.arguments),
            },
        }
        for call in answer.calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    usage: dict[str, Any] = {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }
    if answer.cached_tokens:  # compatible servers often leave the details out: so does this one at 0
        usage["prompt_tokens_details"] = {"cached_tokens": answer.cached_tokens}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": answer.stop_reason or ("tool_calls" if calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def _unanswered(pending: Mapping[str, str]) -> NoReturn:
    raise BadRequest(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}"
    )


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if part["type"] == "text")
    return content or ""


def _assistant(message: dict[str, Any]) -> Turn:
    calls = []
    for call in message.get("tool_calls") or []:
        raw = call["function"]["arguments"]
        if not isinstance(raw, str):
            raise BadRequest("tool_calls[].function.arguments must be a string")
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = None
        calls.append(
            CallView(
                call["id"], call["function"]["name"], arguments if isinstance(arguments, dict) else None, raw
            )
        )
    return Turn("assistant", _text(message.get("content")), tuple(calls))


class _UserTurn:
    """Collects tool messages and user content into one neutral user turn."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.results: list[ResultView] = []
        self.images = 0

    def add_result(self, call_id: str, name: str, text: str) -> None:
        self.results.append(ResultView(call_id, name, text, is_error=text.startswith("Error: ")))

    def add_content(self, content: str | list[dict[str, Any]]) -> None:
        owner: int | None = None  # index into results of the tool result the next images belong to
        for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if part["type"] == "image_url":
                if owner is None:
                    self.images += 1
                else:
                    result = self.results[owner]
                    self.results[owner] = ResultView(
                        result.call_id, result.name, result.text, result.images + 1, result.is_error
                    )
            elif part["type"] == "text":
                owner = self._captioned(part["text"])
                if owner is None:
                    self.texts.append(part["text"])

    def _captioned(self, text: str) -> int | None:
        for index, result in enumerate(self.results):
            if text == images_caption(result.call_id):
                return index
        return None

    def done(self) -> Turn:
        return Turn("user", "\n".join(self.texts), results=tuple(self.results), images=self.images)
