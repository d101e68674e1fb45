"""Check a plan's models before a campaign starts: every key set, every URL answering, every key and
model known to its provider. One line per problem, so the CLI can refuse to start with all of them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from shared.errors import ConfigError
from shared.events.catalogue import LlmPlan, ModelChoice
from shared.llm.clients import client_for, key_variable
from shared.llm.errors import LlmError
from shared.llm.port import Message, ModelClient

log = structlog.get_logger(__name__)
_NO_MODELS_ROUTE = (404, 405, 501)  # the models route answered: not found, not allowed, not there
_PING_TOKENS = 16

__all__ = ["preflight"]


async def preflight(plan: LlmPlan, environ: Mapping[str, str], *, timeout_s: float = 10.0) -> list[str]:
    """Problems with `plan` in this environment; empty when every model answered. Each distinct model
    is asked once, all at the same time, and none for longer than `timeout_s`."""
    roles_of: dict[ModelChoice, list[str]] = {}
    for role, choice in plan.roles.items():
        roles_of.setdefault(choice, []).append(role)
    found = await asyncio.gather(*(_check(choice, environ, timeout_s) for choice in roles_of))
    named = zip(roles_of, found, strict=True)
    return [f"{', '.join(roles_of[choice])}: {problem}" for choice, problem in named if problem]


async def _check(choice: ModelChoice, environ: Mapping[str, str], timeout_s: float) -> str | None:
    try:
        client = client_for(choice, environ, timeout_s=timeout_s)
    except ConfigError as exc:
        return str(exc)
    try:
        # The SDK's own timeout covers each phase; this one bounds the whole exchange.
        await asyncio.wait_for(client.probe(), timeout_s + 1)
    except LlmError as exc:
        if exc.status not in _NO_MODELS_ROUTE:
            return _explain(choice, exc)
        return await _ask(client, choice, exc, timeout_s)
    except TimeoutError:
        return f"{choice.label}: no answer from {client.base_url} within {timeout_s:g} s"
    finally:
        await client.aclose()
    return None


async def _ask(client: ModelClient, choice: ModelChoice, refused: LlmError, timeout_s: float) -> str | None:
    """A server that would not say whether it has the model (a proxy or a small server without the
    models route, or the provider: it gives 404 for an unknown model) is asked for one token: a 404
    again means the model is unknown; an answer, that it is served; a key refused is said so."""
    try:
        await asyncio.wait_for(
            client.complete("Answer in one word.", [Message.user("ping")], [], max_tokens=_PING_TOKENS),
            timeout_s + 1,
        )
    except LlmError as exc:
        if exc.status in (401, 403, 404):
            return _explain(choice, exc if exc.status != 404 else refused)
        log.warning("preflight_ping_refused", model=choice.label, status=exc.status, error=str(exc))
    except TimeoutError:
        return f"{choice.label}: no answer from {client.base_url} within {timeout_s:g} s"
    return None


def _explain(choice: ModelChoice, exc: LlmError) -> str:
    if exc.status in (401, 403):
        variable = key_variable(choice)
        if variable is None:
            return f"{exc}; the server wants a key: name the variable that holds it with api_key_env"
        return f"{exc}; check the key in {variable}"
    if exc.status == 404:
        return f"{exc}; the provider does not serve a model named {choice.model!r}"
    return str(exc)
