"""The transcript of a turn: complete, redacted, readable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from shared.agents import Caps, render, run_turn, transcript_json, workspace_tools
from shared.llm.port import Thinking
from tests.agents.scripted import Scripted, call, report

SECRET = "sk-ant-api03-PLANTED-SECRET"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _redact(text: str) -> str:
    return text.replace(SECRET, "[redacted]")


async def test_the_transcript_redacts_a_planted_secret_everywhere_and_renders_the_tool_calls(
    tmp_path: Path,
) -> None:
    """A key in the prompt, a call's arguments, a tool's output and the summary is gone from the
    document; images are recorded by size and digest; render() shows the calls and results."""
    (tmp_path / "plot.png").write_bytes(PNG)
    client = Scripted(
        [
            (
                Thinking("the key is " + SECRET, signature="sig"),
                call("write_file", path="k.txt", content=SECRET),
            ),
            (call("read_file", path="k.txt"), call("view_image", path="plot.png")),
            (report(f"stored {SECRET}"),),
        ]
    )
    turn = await run_turn(
        client, system="s", prompt=f"use {SECRET}", tools=workspace_tools(tmp_path), caps=Caps()
    )
    document = transcript_json(turn, role="worker", agent="worker-1", model="scripted-1", redact=_redact)
    assert b"PLANTED-SECRET" not in document and b"[redacted]" in document
    parsed = json.loads(document)
    assert parsed["ended"] == "reported" and parsed["totals"]["model_calls"] == 3
    assert len(parsed["calls"]) == 3 and parsed["caps"]["max_tool_calls"] == 40
    image = parsed["messages"][4]["blocks"][1]["images"][0]
    assert image == {"media_type": "image/png", "bytes": len(PNG), "sha256": hashlib.sha256(PNG).hexdigest()}
    shown = render(document)
    assert shown.startswith("worker · worker-1 · scripted-1\nended: reported (by report)")
    assert '→ write_file {"path": "k.txt", "content": "[redacted]"}' in shown
    assert "← view_image: [image image/png, 40 bytes]" in shown
    assert "summary: stored [redacted]" in shown and "3 model calls, 3 tool calls" in shown
