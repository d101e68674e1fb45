"""A tool an agent may call, and how one call of it is answered.

Every answer is a `ToolOutput`, never an exception: a call the model got wrong (malformed JSON, bad
arguments, a tool that does not exist) or a tool that failed is answered with an error the model can
act on, and the turn goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.llm.port import Image, ToolCall, ToolSpec

__all__ = ["OUTPUT_CHARS", "Arguments", "Tool", "ToolError", "ToolOutput", "execute", "truncate"]

log = structlog.get_logger(__name__)

OUTPUT_CHARS = 30_000  # what one tool result may hand the model; the rest is cut from the middle


class Arguments(BaseModel):
    """The base of every tool's arguments: an argument the tool does not take is an error the model
    is told about, not one silently dropped."""

    model_config = ConfigDict(extra="forbid")


A = TypeVar("A", bound=BaseModel)


class ToolError(Exception):
    """A refusal or failure a tool reports in its own words: the message is the whole error result."""


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a tool hands back. `ends_turn`: the turn is over once this call is answered."""

    text: str
    images: tuple[Image, ...] = ()
    is_error: bool = False
    ends_turn: bool = False


@dataclass(frozen=True)
class Tool(Generic[A]):
    """A named, described async function of validated arguments."""

    name: str
    description: str
    arguments: type[A]
    run: Callable[[A], Awaitable[ToolOutput]]

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, _compact(self.arguments.model_json_schema()))


async def execute(tools: Mapping[str, Tool[Any]], call: ToolCall) -> ToolOutput:
    """Validate and run one call; every failure becomes an error result, cancellation excepted."""
    tool = tools.get(call.name)
    if tool is None:
        return _error(f"there is no tool {call.name!r}; the tools are: {', '.join(sorted(tools))}")
    if call.arguments is None:
        why = call.error or "not a JSON object"
        return _error(f"the arguments of {call.name} are not valid JSON ({why}). {_expected(tool)}")
    try:
        arguments = tool.arguments.model_validate(call.arguments)
    except ValidationError as err:
        return _error(f"invalid arguments for {call.name}: {_problems(err)}. {_expected(tool)}")
    try:
        output = await tool.run(arguments)
    except ToolError as err:
        return _error(str(err))
    except Exception as err:  # a tool's failure is the model's to see and work around, not the loop's
        log.warning("tool failed", tool=call.name, error=repr(err))
        return _error(f"{call.name} failed: {type(err).__name__}: {_first_line(err)}")
    return ToolOutput(truncate(output.text), output.images, output.is_error, output.ends_turn)


def truncate(text: str, limit: int = OUTPUT_CHARS) -> str:
    """`text` whole if it fits in `limit` characters, else its first and last halves and a marker."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut:,} characters cut ...]\n{text[-half:]}"


def _error(text: str) -> ToolOutput:
    return ToolOutput(text, is_error=True)


def _expected(tool: Tool[Any]) -> str:
    schema = tool.spec.parameters
    required = schema.get("required", [])
    optional = [name for name in schema.get("properties", {}) if name not in required]
    parts = [f"required: {', '.join(required) or 'none'}"]
    if optional:
        parts.append(f"optional: {', '.join(optional)}")
    return f"{tool.name} takes a JSON object ({'; '.join(parts)})."


def _problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'arguments'}: {problem['msg']}"
        for problem in err.errors(include_url=False)
    )


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:500] if lines else "(no message)"


def _compact(node: Any, *, names: bool = False) -> Any:
    """A JSON Schema without pydantic's `title`s: tokens the model pays for on every call.

    `names`: `node` maps property (or definition) names to schemas, so its keys are kept as they are.
    """
    if isinstance(node, list):
        return [_compact(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: _compact(value) for key, value in node.items()}
    return {
        key: _compact(value, names=key in ("properties", "$defs"))
        for key, value in node.items()
        if key != "title"
    }
