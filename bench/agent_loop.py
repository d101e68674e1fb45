"""What the agent loop adds to each model call, side by side with the call itself.

    .venv/bin/python bench/agent_loop.py [--turns N] [--calls-per-turn K]

The real SDKs (anthropic, openai) call `tests/llm/wire.py`, a local server speaking their wire formats,
so a "model call" here is the SDK's request, the HTTP round trip and the parsing: the floor of a real
call, which takes seconds. Per model call it prints:
- model: the time inside `complete()` (SDK + local HTTP);
- loop: the loop's own time outside the model, the tools and the callback (compaction checks,
  bookkeeping, building the next request);
- record: publishing the call's `llm-call-finished` event to a real nats-server and waiting for
  JetStream's ack (what `shared.agents.session` does after every call);
and the ratio of loop + record to the model call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.agents import Arguments, Caps, Tool, ToolOutput, run_turn  # noqa: E402
from shared.bus import Bus  # noqa: E402
from shared.events import Event, LlmCallFinished, ModelChoice, Producer  # noqa: E402
from shared.llm import Reply, client_for  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.nats_server import EmbeddedNats  # noqa: E402
from tests.llm.wire import Answer, Call, Request, WireServer  # noqa: E402

KEY = "sk-bench-0000000000"


class _Nothing(Arguments):
    pass


async def _look(_: _Nothing) -> ToolOutput:
    return ToolOutput("the board: nothing new")


def _script(calls_per_turn: int):  # type: ignore[no-untyped-def]
    def script(request: Request) -> Answer:
        done = sum(1 for turn in request.turns if turn.role == "assistant")
        if done + 1 >= calls_per_turn:
            return Answer(calls=(Call("report", {"summary": "done"}),))
        return Answer(calls=(Call("look", {}),), input_tokens=1000 + 50 * done, output_tokens=30)

    return script


async def _measure(
    provider: str, model: str, server: WireServer, bus: Bus, turns: int, calls: int
) -> dict[str, list[float]]:
    environ = {
        "ANTHROPIC_API_KEY": KEY,
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": server.url,
        "OPENAI_BASE_URL": server.url + "/v1",
    }
    client = client_for(ModelChoice(provider=provider, model=model), environ)  # type: ignore[arg-type]

    async def record(reply: Reply) -> None:
        payload = LlmCallFinished(
            role="worker", provider=provider, model=model, input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens, usd=0.0, seconds=reply.seconds,
        )  # fmt: skip
        await bus.publish(Event.new(payload, campaign_id="bench", producer=bus.producer))

    found: dict[str, list[float]] = {"model": [], "loop": [], "record": []}
    tool = Tool("look", "Look at the board.", _Nothing, _look)
    try:
        for _ in range(turns):
            turn = await run_turn(
                client, system="bench", prompt="go", tools=[tool], caps=Caps(), on_call=record
            )
            for call in turn.calls:
                found["model"].append(call.model_seconds)
                found["loop"].append(call.overhead_seconds)
                found["record"].append(call.callback_seconds)
    finally:
        await client.aclose()
    return found


async def main(turns: int, calls: int) -> None:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp) / "nats") as nats:
        bus = await Bus.connect(nats.url, Producer(service="bench", instance="agent-loop"))
        try:
            with WireServer(_script(calls), api_key=KEY) as server:
                print(f"{turns} turns x {calls} model calls per provider; medians (mean) per model call")
                print(f"{'provider':<12}{'model ms':>16}{'loop ms':>16}{'record ms':>16}{'added/model':>14}")
                for provider, model in (("anthropic", "claude-opus-4-6"), ("openai", "gpt-5.2")):
                    found = await _measure(provider, model, server, bus, turns, calls)
                    cells = [
                        f"{1000 * statistics.median(v):8.2f} ({1000 * statistics.mean(v):.2f})"
                        for v in (found["model"], found["loop"], found["record"])
                    ]
                    added = statistics.mean(found["loop"]) + statistics.mean(found["record"])
                    ratio = added / statistics.mean(found["model"])
                    print(f"{provider:<12}{cells[0]:>16}{cells[1]:>16}{cells[2]:>16}{ratio:>14.3f}")
        finally:
            await bus.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--calls-per-turn", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.turns, arguments.calls_per_turn))
