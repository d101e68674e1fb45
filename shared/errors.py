"""One base error for everything AlphaLab refuses, so the CLI can print it as one clear line."""

from __future__ import annotations

__all__ = ["AlphaLabError", "ConfigError", "MalformedEvent", "NatsUnavailable", "PermissionDenied"]


class AlphaLabError(Exception):
    """Base of every error whose message is meant for the operator."""


class ConfigError(AlphaLabError):
    """A setting, flag or file is wrong; the message names it and says what to do."""


class NatsUnavailable(AlphaLabError):
    """The NATS server could not be reached or started, or the bus is away for now (an outage).

    A handler that fails with it (or with any of nats' connection errors) is interrupted, not
    failing: its message is retried without spending its delivery budget."""


class MalformedEvent(AlphaLabError):
    """Raw bytes that are not a valid event; the message is the reason kept in the dead letter."""


class PermissionDenied(AlphaLabError):
    """The NATS server refused this user something (a publish to a subject it may not use)."""
