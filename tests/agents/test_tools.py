"""Tool definitions and the answering of one call."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.agents import Arguments, Tool, ToolOutput
from shared.agents.tools import truncate


class _Inner(BaseModel):
    title: str  # a property named `title` survives the compaction of the schema


class _Propose(Arguments):
    config: dict[str, float] = Field(description="the hyperparameters")
    notes: list[_Inner] = []


async def _propose(_: _Propose) -> ToolOutput:
    return ToolOutput("queued")


def test_a_tool_spec_is_its_arguments_schema_without_titles() -> None:
    """The schema sent to the model keeps what it needs (types, required, descriptions) and no titles."""
    parameters = Tool("propose", "Queue it.", _Propose, _propose).spec.parameters
    assert parameters["required"] == ["config"] and parameters["additionalProperties"] is False
    assert parameters["properties"]["config"]["description"] == "the hyperparameters"
    assert "title" not in str({k: v for k, v in parameters.items() if k != "$defs"})
    assert parameters["$defs"]["_Inner"] == {
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "type": "object",
    }


def test_truncate_keeps_the_head_and_the_tail_and_says_how_much_went() -> None:
    """A long output is cut from the middle, with a marker; a short one is untouched."""
    text = "A" * 50 + "B" * 100 + "C" * 50
    cut = truncate(text, 100)
    assert cut == "A" * 50 + "\n[... 100 characters cut ...]\n" + "C" * 50
    assert truncate("short", 100) == "short"
