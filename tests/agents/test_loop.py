"""The agent loop, driven by a scripted model."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from shared.agents import Arguments, Caps, Tool, ToolOutput, run_turn, workspace_tools
from shared.agents.compaction import tokens
from shared.llm.errors import LlmError
from shared.llm.port import Block, Message, Reply, Text, Thinking, ToolCall, ToolResult
from tests.agents.scripted import Scripted, call, report, say


class _Nothing(Arguments):
    pass


class _Size(Arguments):
    chars: int


async def _noop(_: _Nothing) -> ToolOutput:
    return ToolOutput("ok")


async def _dump(args: _Size) -> ToolOutput:
    return ToolOutput("x" * args.chars)


async def _slow(_: _Nothing) -> ToolOutput:
    await asyncio.sleep(30)
    return ToolOutput("too late")


async def _boom(_: _Nothing) -> ToolOutput:
    raise RuntimeError("the disk is on fire\nand more detail")


NOOP = Tool("noop", "Does nothing.", _Nothing, _noop)
DUMP = Tool("dump", "Prints `chars` characters.", _Size, _dump)
SLOW = Tool("slow", "Takes its time.", _Nothing, _slow)
BOOM = Tool("boom", "Fails.", _Nothing, _boom)


def _results(message: Message) -> list[ToolResult]:
    return [block for block in message.content if isinstance(block, ToolResult)]


async def test_a_turn_writes_a_file_runs_it_in_the_sandbox_and_reports(tmp_path: Path) -> None:
    """write_file, shell_exec and report: the file is there, its output came back, the turn reported."""
    client = Scripted(
        [
            (call("write_file", path="hello.py", content="print(6 * 7)\n"),),
            (Text("Now run it."), call("shell_exec", command="python hello.py")),
            (report("hello.py prints 42"),),
        ]
    )
    turn = await run_turn(
        client, system="You code.", prompt="Write hello.py", tools=workspace_tools(tmp_path), caps=Caps()
    )
    assert (turn.ended, turn.summary, turn.ended_by) == ("reported", "hello.py prints 42", "report")
    assert (tmp_path / "hello.py").read_text() == "print(6 * 7)\n"
    shell = _results(turn.messages[4])[0]
    assert "42" in shell.content and "exit status 0" in shell.content and not shell.is_error
    assert (turn.model_calls, turn.tool_calls) == (3, 2)
    assert turn.usage.input_tokens == sum(call.usage.input_tokens for call in turn.calls) > 0


@pytest.mark.parametrize(
    ("caps", "delay", "ended"),
    [
        (Caps(max_tool_calls=2), 0.0, "max_tool_calls"),
        (Caps(max_model_calls=3), 0.0, "max_model_calls"),
        (Caps(max_tokens=1500), 0.0, "max_tokens"),
        (Caps(max_seconds=0.3), 0.2, "max_seconds"),
    ],
)
async def test_each_cap_ends_the_turn_with_its_name(caps: Caps, delay: float, ended: str) -> None:
    """A model that never stops is stopped by whichever cap it reaches, and the turn says which."""
    client = Scripted(lambda _: (call("noop"),), delay=delay)
    turn = await run_turn(client, system="s", prompt="go on forever", tools=[NOOP], caps=caps)
    assert turn.ended == ended
    assert turn.tool_calls <= caps.max_tool_calls and turn.model_calls <= caps.max_model_calls
    assert turn.seconds < 5


async def test_a_tool_cap_reached_mid_reply_answers_every_call_and_still_honours_a_report() -> None:
    """Calls past the cap are answered 'not run'; a report after them still ends the turn as reported."""
    client = Scripted([(call("noop"), call("noop"), call("noop"), report("stopped early"))])
    turn = await run_turn(client, system="s", prompt="p", tools=[NOOP], caps=Caps(max_tool_calls=2))
    results = _results(turn.messages[-1])
    assert [r.content.startswith("not run") for r in results] == [False, False, True, False]
    assert (turn.ended, turn.summary, turn.tool_calls) == ("reported", "stopped early", 2)


async def test_time_running_out_inside_a_tool_ends_the_turn_and_answers_the_call() -> None:
    """A slow tool is cancelled at max_seconds; its call is answered and the turn ends as max_seconds."""
    client = Scripted([(call("slow"), call("noop"))])
    turn = await run_turn(client, system="s", prompt="p", tools=[SLOW, NOOP], caps=Caps(max_seconds=0.3))
    assert turn.ended == "max_seconds" and turn.seconds < 5
    assert [r.content for r in _results(turn.messages[-1])] == [
        "not finished: the turn's time ran out",
        "not run: the turn ended (max_seconds)",
    ]


async def test_nudges_are_bounded_then_the_turn_ends_as_no_tool_call() -> None:
    """Text without a tool call is nudged max_nudges times, then the turn ends."""
    client = Scripted(lambda _: say("I think I am done."))
    turn = await run_turn(client, system="s", prompt="p", tools=[], caps=Caps(max_nudges=2))
    assert (turn.ended, turn.nudges, turn.model_calls) == ("no tool call", 2, 3)
    assert [m.role for m in turn.messages] == ["user", "assistant", "user", "assistant", "user", "assistant"]


async def test_a_nudged_model_that_then_reports_has_reported() -> None:
    """A nudge is a second chance, not the end."""
    client = Scripted([say("All done."), (report("really done"),)])
    turn = await run_turn(client, system="s", prompt="p", tools=[], caps=Caps())
    assert (turn.ended, turn.summary, turn.nudges) == ("reported", "really done", 1)


async def test_bad_calls_are_answered_with_errors_the_model_can_act_on_and_the_turn_goes_on() -> None:
    """Malformed JSON, an unknown tool, invalid arguments and a failing tool each get an error result."""
    malformed = ToolCall("bad-json", "dump", None, '{"chars": ', "Expecting value: line 1 column 11")
    client = Scripted(
        [
            (malformed, call("nope"), call("dump", chars="many"), call("dump", size=3), call("boom")),
            (report(),),
        ]
    )
    turn = await run_turn(client, system="s", prompt="p", tools=[DUMP, BOOM], caps=Caps())
    json_error, unknown, invalid, extra, failed = _results(turn.messages[2])
    assert all(r.is_error for r in (json_error, unknown, invalid, extra, failed))
    assert "not valid JSON (Expecting value" in json_error.content and "required: chars" in json_error.content
    assert unknown.content == "there is no tool 'nope'; the tools are: boom, dump, report"
    assert "chars:" in invalid.content and "integer" in invalid.content
    assert "size: Extra inputs are not permitted" in extra.content
    assert failed.content == "boom failed: RuntimeError: the disk is on fire"
    assert turn.ended == "reported"


async def test_every_call_of_a_reply_is_answered_in_one_message_with_matching_ids() -> None:
    """Calls after a report are not run, but answered: the provider needs one result per call."""
    calls = (call("noop"), report("early"), call("noop"))
    turn = await run_turn(Scripted([calls]), system="s", prompt="p", tools=[NOOP], caps=Caps())
    results = _results(turn.messages[-1])
    assert [r.call_id for r in results] == [c.id for c in calls]
    assert results[2].content == "not run: the turn ended (reported)" and turn.tool_calls == 1


async def test_a_callers_tool_can_end_the_turn() -> None:
    """A tool whose output says ends_turn ends the turn as reported, by that tool, with its text."""

    async def propose(_: _Nothing) -> ToolOutput:
        return ToolOutput("proposal queued", ends_turn=True)

    tool = Tool("propose_experiment", "Queue it and end the turn.", _Nothing, propose)
    turn = await run_turn(
        Scripted([(call("propose_experiment"),)]), system="s", prompt="p", tools=[tool], caps=Caps()
    )
    assert (turn.ended, turn.ended_by, turn.summary) == ("reported", "propose_experiment", "proposal queued")


async def test_thinking_blocks_go_back_to_the_model_as_they_came() -> None:
    """The assistant message keeps the reply's thinking, signature included, before its tool call."""
    thinking = Thinking("let me look first", signature="c2lnbmF0dXJl")
    client = Scripted([(thinking, call("noop")), (report(),)])
    await run_turn(client, system="s", prompt="p", tools=[NOOP], caps=Caps())
    assistant = client.requests[1][1]
    assert assistant.role == "assistant" and assistant.content[0] is thinking


async def test_a_model_error_ends_the_turn_without_raising() -> None:
    """An LlmError after the adapter's retries ends the turn as 'model error: ...'."""
    client = Scripted([(call("noop"),), LlmError("overloaded (529)", retryable=True, status=529)])
    turn = await run_turn(client, system="s", prompt="p", tools=[NOOP], caps=Caps())
    assert turn.ended == "model error: overloaded (529)" and turn.model_calls == 1


async def test_on_call_is_awaited_after_every_model_call() -> None:
    """The caller sees each reply (to publish llm-call-finished), in order."""
    seen: list[Reply] = []

    async def on_call(reply: Reply) -> None:
        seen.append(reply)

    client = Scripted([(call("noop"),), say("done?"), (report(),)])
    turn = await run_turn(client, system="s", prompt="p", tools=[NOOP], caps=Caps(), on_call=on_call)
    assert len(seen) == turn.model_calls == 3 and seen[1].text == "done?"


async def test_cancelling_a_turn_propagates() -> None:
    """Cancellation is not a way for a turn to end: it reaches the caller."""
    client = Scripted([(call("slow"),)])
    task = asyncio.create_task(run_turn(client, system="s", prompt="p", tools=[SLOW], caps=Caps()))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_loop_adds_little_latency_per_model_call() -> None:
    """Time outside the model and the tools stays in the milliseconds per call."""
    client = Scripted(_dumps(20, chars=2000))
    turn = await run_turn(client, system="s", prompt="p", tools=[DUMP], caps=Caps())
    assert turn.model_calls == 21
    assert all(call.overhead_seconds >= 0 for call in turn.calls)
    assert turn.overhead_per_call < 0.02, turn.overhead_per_call


def _dumps(count: int, *, chars: int) -> Callable[[Sequence[Message]], tuple[Block, ...]]:
    """A script: `count` calls of dump, then a report."""
    made = itertools.count(1)
    return lambda _: (call("dump", chars=chars),) if next(made) <= count else (report(),)


def _pairs_intact(request: Sequence[Message]) -> bool:
    """Each assistant message's calls are answered, id for id, by the user message after it."""
    for index, message in enumerate(request):
        calls = [b.id for b in message.content if isinstance(b, ToolCall)]
        if calls:
            answer = request[index + 1] if index + 1 < len(request) else None
            if answer is None or [r.call_id for r in _results(answer)] != calls:
                return False
    return True


async def test_compaction_before_a_call_that_would_overflow_keeps_calls_with_their_results() -> None:
    """With a small window, old results are elided and old exchanges dropped before each call that
    would pass compact_at; every request fits, starts with the prompt and keeps call/result pairs."""
    client = Scripted(_dumps(30, chars=1000), context_tokens=2000)
    caps = Caps(max_tool_calls=50, compact_at=0.6)
    turn = await run_turn(client, system="s", prompt="the task", tools=[DUMP], caps=caps)
    assert turn.ended == "reported" and turn.compactions
    assert any(c.elided_blocks for c in turn.compactions) and any(
        c.dropped_exchanges for c in turn.compactions
    )
    budget = 0.6 * client.context_tokens
    for request in client.requests:
        assert request[0].content[0] == Text("the task")
        assert _pairs_intact(request)
        assert tokens(request, "s", json.dumps([s.parameters for s in client.specs])) <= budget
    assert "earlier exchanges of this turn dropped to fit the context" in str(
        client.requests[-1][0].content[-1]
    )
    assert "elided to fit the context: dump result of 1,000 characters" in str(client.requests[-1])
    assert all(len(r.content) == 1000 for m in turn.messages[2:-1:2] for r in _results(m))


async def test_no_compaction_while_the_conversation_fits() -> None:
    """A turn well inside the window is sent whole."""
    client = Scripted([(call("dump", chars=100),), (report(),)])
    turn = await run_turn(client, system="s", prompt="p", tools=[DUMP], caps=Caps())
    assert not turn.compactions and client.requests[1] == list(turn.messages[:3])


async def test_a_stop_reason_ends_the_turn_before_the_next_model_call() -> None:
    reasons: list[str | None] = [None, "the campaign's USD budget is spent"]
    client = Scripted([(call("noop"),), (call("noop"),), (report(),)])
    turn = await run_turn(
        client, system="s", prompt="p", tools=[NOOP], caps=Caps(), stop=lambda: reasons.pop(0)
    )
    assert turn.ended == "the campaign's USD budget is spent" and turn.model_calls == 1


async def test_a_report_whose_text_came_under_another_name_still_ends_the_turn() -> None:
    client = Scripted([(call("report", message="all done"),)])
    turn = await run_turn(client, system="s", prompt="p", tools=[NOOP], caps=Caps())
    assert turn.ended == "reported" and turn.summary == "all done"
