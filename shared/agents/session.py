"""One agent turn as the lab records it: the loop, an `llm-call-finished` per model call, the transcript
stored as a blob and an `agent-turn` event naming it.

The turn's event id is its `key`, so a turn that a crash interrupted is run again under the same id
(its repeated calls are real spend and are counted; its `agent-turn` is stored once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from shared.agents.loop import Caps, Turn, run_turn
from shared.agents.tools import Tool
from shared.agents.transcript import transcript_json
from shared.bus import Bus
from shared.events import AgentTurn, Event, LlmCallFinished, ModelChoice, Price
from shared.llm import client_for, usd
from shared.llm.port import Reply
from shared.secrets import redact

__all__ = ["Agent", "run_agent_turn"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Agent:
    """Who takes a turn: a role's model, in one campaign, about one subject (a run id or an instance)."""

    bus: Bus
    campaign_id: str
    role: str
    name: str
    choice: ModelChoice
    price: Price
    cause: Event | None = None


async def run_agent_turn(
    agent: Agent,
    *,
    key: str,
    number: int,
    purpose: str,
    system: str,
    prompt: str,
    tools: Sequence[Tool],
    caps: Caps,
    before_record: Callable[[], Awaitable[str | None]] | None = None,
    stop: Callable[[], str | None] | None = None,
) -> Turn:
    """Run one turn of `agent` and record it; the model errors end the turn (see `Turn.ended`).

    `before_record` is awaited after the turn and before its `agent-turn` event: what the turn
    decided is published first, so the record of a turn is the sign that its decisions are out. What
    it returns, if anything, is a problem the record notes. `stop` ends the turn early (see run_turn)."""
    client = client_for(agent.choice)
    with structlog.contextvars.bound_contextvars(agent=agent.name, purpose=purpose):
        try:
            turn = await run_turn(
                client,
                system=system,
                prompt=prompt,
                tools=tools,
                caps=caps,
                on_call=lambda reply: _record_call(agent, reply),
                stop=stop,
            )
        finally:
            await client.aclose()
        problem = await before_record() if before_record is not None else None
        ended = f"{turn.ended}; {problem}" if problem else turn.ended
        await _record_turn(agent, turn, key=key, number=number, purpose=purpose, ended=ended)
        log.info("agent_turn", ended=ended, tool_calls=turn.tool_calls, model_calls=turn.model_calls)
    return turn


async def _record_call(agent: Agent, reply: Reply) -> None:
    call = LlmCallFinished(
        role=agent.role,
        provider=agent.choice.provider,
        model=agent.choice.model,
        input_tokens=reply.usage.input_tokens,
        output_tokens=reply.usage.output_tokens,
        cached_tokens=reply.usage.cached_tokens,
        cache_write_tokens=reply.usage.cache_write_tokens,
        usd=usd(agent.price, reply.usage),
        seconds=reply.seconds,
        agent=agent.name,
        retries=reply.retries,
    )
    # Shielded: a turn cancelled while its call's record is being published still records it.
    await asyncio.shield(_publish(agent, call))


async def _record_turn(agent: Agent, turn: Turn, *, key: str, number: int, purpose: str, ended: str) -> None:
    """The transcript as a blob, then the `agent-turn` event naming it (its id: the turn's key)."""
    document = transcript_json(
        turn, role=agent.role, agent=agent.name, model=agent.choice.label, redact=redact
    )
    record = AgentTurn(
        role=agent.role,
        turn=number,
        summary=redact(turn.summary)[:2000],
        transcript_digest=await agent.bus.blobs.put(document),
        agent=agent.name,
        purpose=purpose,
        model=agent.choice.label,
        tool_calls=turn.tool_calls,
        model_calls=turn.model_calls,
        input_tokens=turn.usage.input_tokens,
        output_tokens=turn.usage.output_tokens,
        usd=usd(agent.price, turn.usage),
        seconds=turn.seconds,
        ended=ended,
    )
    await _publish(agent, record, event_id=f"{agent.campaign_id}-{key}")


async def _publish(agent: Agent, payload: LlmCallFinished | AgentTurn, event_id: str | None = None) -> None:
    event = Event.new(
        payload,
        campaign_id=agent.campaign_id,
        producer=agent.bus.producer,
        caused_by=agent.cause,
        event_id=event_id,
    )
    await agent.bus.publish(event)
