"""structlog configuration: JSON lines for services, readable console lines for the CLI."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from shared.secrets import redact, secrets_in

__all__ = ["configure_logging", "redact_secrets"]


def redact_secrets(_: object, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Scrub API key values from every string of a log line (see shared.secrets)."""
    secrets = secrets_in()
    return _scrubbed(event, secrets) if secrets else event


def _scrubbed(value: Any, secrets: dict[str, str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, secrets) for item in value]
    return value


def configure_logging(fmt: Literal["json", "console"] = "json", level: str = "info") -> None:
    """Route structlog to stderr; context bound with `structlog.contextvars` appears on every line."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
