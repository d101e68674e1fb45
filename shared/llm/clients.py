"""A `ModelClient` for a `ModelChoice`, its key and base URL read from the calling process's environment.

The key is read here and handed to the SDK, never stored in an event, a log line or an error. A
self-hosted server ("openai-compatible") gets OPENAI_API_KEY only when named by `api_key_env`, so a
real OpenAI key is never sent to a third-party endpoint by default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from shared.errors import ConfigError
from shared.events.catalogue import ModelChoice
from shared.llm.port import ModelClient
from shared.llm.retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["base_url_for", "client_for", "key_variable"]

_KEY_VARIABLE = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
_URL_VARIABLE = {
    "anthropic": "ANTHROPIC_BASE_URL",
    "openai": "OPENAI_BASE_URL",
    "openai-compatible": "OPENAI_BASE_URL",
}
_DEFAULT_URL = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}


def key_variable(choice: ModelChoice) -> str | None:
    """The variable the key is read from; None for a self-hosted model that needs none."""
    return choice.api_key_env or _KEY_VARIABLE.get(choice.provider)


def base_url_for(choice: ModelChoice, environ: Mapping[str, str]) -> str:
    url = choice.base_url or environ.get(_URL_VARIABLE[choice.provider]) or _DEFAULT_URL.get(choice.provider)
    if not url:
        raise ConfigError(
            f"{choice.label}: an openai-compatible model needs a base URL; "
            "give base_url (or model@http://host:port/v1 on --llm) or set OPENAI_BASE_URL"
        )
    return url


def client_for(
    choice: ModelChoice,
    environ: Mapping[str, str] = os.environ,
    *,
    timeout_s: float = 600.0,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> ModelClient:
    """Raises ConfigError naming the variable when the key is missing.

    The SDKs are imported here, not at the top: importing both takes seconds, and every Worker
    process imports this module whether or not its campaign uses a model."""
    variable = key_variable(choice)
    key = environ.get(variable, "") if variable else "none"  # the SDK insists on some key
    if not key:
        raise ConfigError(
            f"{choice.label}: {variable} is not set; export the API key there "
            "(or name another variable with api_key_env)"
        )
    url = base_url_for(choice, environ)
    if choice.provider == "anthropic":
        from shared.llm.anthropic_messages import AnthropicClient

        return AnthropicClient(choice, key, url, timeout_s, retry)
    from shared.llm.openai_chat import OpenAIClient

    return OpenAIClient(choice, key, url, timeout_s, retry)
