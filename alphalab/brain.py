"""Which brain a campaign runs, from the CLI's flags and the campaign file, checked before it starts.

The LLM brain is refused before anything starts when a model cannot answer (missing key, unreachable
base URL, unknown model, bad key: see `shared.llm.preflight`), or when a dollar cap is set and a
model has no price to count it with: a campaign an hour in is the wrong place to learn either.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.errors import ConfigError
from shared.events import LlmPlan
from shared.sandbox import Isolation

__all__ = ["Brain", "choose_brain"]


@dataclass(frozen=True)
class Brain:
    kind: Literal["builtin", "llm"] = "builtin"
    plan: LlmPlan | None = None
    max_usd: float | None = None


def choose_brain(
    kind: Literal["builtin", "llm"],
    spec: str | None,
    config: Path | None,
    max_usd: float | None,
    *,
    sandbox: Isolation,
    unsafe: bool = False,
) -> Brain:
    """The brain the flags ask for; for the LLM brain, only once every model answered its preflight
    and where the sandbox keeps agents' commands away from the keys in their Worker's environment."""
    if kind == "builtin":
        if spec or config or max_usd is not None:
            raise ConfigError("--llm, --config and --max-usd belong to the LLM brain: add --brain llm")
        return Brain()
    if not sandbox.hides_processes and not unsafe:
        raise ConfigError(
            f"the LLM brain cannot start: its agents run shell commands, and the sandbox here "
            f"({sandbox.mode}) does not keep them from reading other processes' environments, where the "
            "API keys are; "
            "install bubblewrap (see `alphalab doctor`) or pass --unsafe-no-sandbox"
        )
    from shared.llm import plan, preflight, price_for

    models = plan(spec, config)
    cap = max_usd if max_usd is not None else _file_max_usd(config)
    problems = asyncio.run(preflight(models, os.environ))
    for role, choice in models.roles.items():
        if cap is not None and price_for(choice, models.prices) is None:
            problems.append(
                f"{role}: no price for {choice.label}, so --max-usd cannot be enforced; add "
                f'[prices."{choice.label}"] input = ..., output = ... (USD per million tokens) to the config'
            )
    if problems:
        raise ConfigError("the LLM brain cannot start: " + "; ".join(problems))
    return Brain("llm", models, cap)


def _file_max_usd(config: Path | None) -> float | None:
    """`[budget] max_usd` of the campaign file, if it has one."""
    if config is None:
        return None
    budget = tomllib.loads(config.read_text(encoding="utf-8")).get("budget", {})
    value = budget.get("max_usd") if isinstance(budget, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{config}: budget.max_usd: must be a positive number of dollars, not {value!r}")
    return float(value)
