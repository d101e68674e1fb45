"""The agent loop every LLM role runs, its tools, and the transcript of a turn.

tools = [*workspace_tools(workspace, hidden=held_out), my_tool]
turn = await run_turn(client, system=system, prompt=prompt, tools=tools, caps=Caps())
document = transcript_json(turn, role="worker", agent="worker-1", model=label, redact=redact)
"""

from shared.agents.compaction import Compaction
from shared.agents.loop import REPORT, REPORTED, Call, Caps, Turn, run_turn
from shared.agents.tools import Arguments, Tool, ToolError, ToolOutput
from shared.agents.transcript import render, transcript_json
from shared.agents.workspace_tools import workspace_tools

__all__ = [
    "REPORT",
    "REPORTED",
    "Arguments",
    "Call",
    "Caps",
    "Compaction",
    "Tool",
    "ToolError",
    "ToolOutput",
    "Turn",
    "render",
    "run_turn",
    "transcript_json",
    "workspace_tools",
]
