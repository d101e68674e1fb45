"""What a model call costs: list prices (USD per million tokens) and the bill for one `Usage`.

Prices change; a campaign's `LlmPlan.prices` overrides this table by label (`provider:model`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.events.catalogue import ModelChoice, Price
from shared.llm.port import Usage

__all__ = ["DEFAULT_PRICES", "price_for", "usd"]

_OPUS = Price(input=5.0, output=25.0, cached_input=0.50, cache_write=6.25)
_SONNET = Price(input=3.0, output=15.0, cached_input=0.30, cache_write=3.75)
_GPT_5 = Price(input=1.25, output=10.0, cached_input=0.125)

DEFAULT_PRICES: Mapping[str, Price] = {
    "anthropic:claude-opus-4-6": _OPUS,
    "anthropic:claude-opus-4-5": _OPUS,
    "anthropic:claude-sonnet-4-6": _SONNET,
    "anthropic:claude-sonnet-4-5": _SONNET,
    "anthropic:claude-haiku-4-5": Price(input=1.0, output=5.0, cached_input=0.10, cache_write=1.25),
    "openai:gpt-5.2": Price(input=1.75, output=14.0, cached_input=0.175),
    "openai:gpt-5.1": _GPT_5,
    "openai:gpt-5": _GPT_5,
    "openai:gpt-5-mini": Price(input=0.25, output=2.0, cached_input=0.025),
    "openai:gpt-4.1": Price(input=2.0, output=8.0, cached_input=0.5),
}

_FREE = Price(input=0.0, output=0.0)
# A dated snapshot costs what its alias does: claude-sonnet-4-5-20250929, gpt-5-mini-2025-08-07.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def price_for(choice: ModelChoice, overrides: Mapping[str, Price]) -> Price | None:
    """The price of `choice`: an override, else the table, else free for a self-hosted model; None
    when nothing is known (the caller then cannot hold the campaign to a dollar budget)."""
    label = choice.label
    if label in overrides:
        return overrides[label]
    alias = f"{choice.provider}:{_SNAPSHOT.sub('', choice.model)}"
    if alias in DEFAULT_PRICES:
        return DEFAULT_PRICES[alias]
    return _FREE if choice.provider == "openai-compatible" else None


def usd(price: Price, usage: Usage) -> float:
    """The bill: uncached input at the input rate, cache reads and writes at theirs, output at its."""
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    uncached = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens)
    dollars = (
        uncached * price.input
        + usage.cached_tokens * cached_rate
        + usage.cache_write_tokens * write_rate
        + usage.output_tokens * price.output
    )
    return dollars / 1_000_000
