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
    if not secrets:
        return event
    return {key: redact(value, secrets) if isinstance(value, str) else value for key, value in event.items()}


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
